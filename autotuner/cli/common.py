"""What every subcommand shares: the archive options, exit codes, printing JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

# Exit codes, the same for every subcommand (listed in `autotuner --help` and the README).
EXIT_OK = 0
EXIT_ERROR = 1  # a clear error was printed: bad input, no GPU, unreachable archive, ...
EXIT_USAGE = 2  # the command line itself is wrong (argparse)
EXIT_REJECTED = 3  # `eval`: the candidate was checked and rejected
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_CODES = ((EXIT_OK, "success"), (EXIT_ERROR, "error (one line on stderr says what and what to do)"),
              (EXIT_USAGE, "usage error"), (EXIT_REJECTED, "eval: the candidate was rejected"),
              (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"))  # fmt: skip

DB_HELP = ("archive URL or SQLite file path (default: $AUTOTUNER_DB_URL, else db_url in the config file, "
           "else ~/.local/share/autotuner/archive.db)")  # fmt: skip
CONFIG_HELP = "TOML config file (default: ./autotuner.toml if present); its db_url names the archive"


def add_archive_options(parser: argparse.ArgumentParser) -> None:
    """``--db`` and ``--config``: where the archive is, the same way for every command that opens it."""
    parser.add_argument("--db", metavar="URL", help=DB_HELP)
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def archive_url(args: argparse.Namespace) -> str | None:
    """The archive URL by the layers of the configuration: --db > $AUTOTUNER_DB_URL > db_url in the file.

    None leaves the choice to the archive's default file.
    """
    from autotuner.app.run_config import load_config

    overrides = {"db_url": args.db} if getattr(args, "db", None) else None
    return load_config(getattr(args, "config", None), overrides=overrides).db_url


def progress(message: str) -> None:
    """One line on stderr saying what a long command is doing now (``... resolving slots``)."""
    print(f"... {message}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    """One JSON document on stdout (what ``--json`` prints, everywhere)."""
    print(json.dumps(data, indent=2, default=str))


def plain(doc: str | None) -> str:
    """A docstring's first paragraph as help text: reStructuredText ``code`` marks removed."""
    first = (doc or "").strip().split("\n\n")[0]
    return re.sub(r"``([^`]*)``", r"\1", first)
