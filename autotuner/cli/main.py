"""``autotuner`` entry point: one module per subcommand, each with ``register(subparsers)``.

A subcommand module's ``register`` adds its parser and sets ``func`` to a function taking the
parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from autotuner import __version__
from autotuner.errors import AutotunerError

# Modules under autotuner.cli, in the order `autotuner --help` lists them.
SUBCOMMANDS = ("tune", "eval", "doctor", "archive", "bench", "deploy", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotuner",
        description="Turn PyTorch references into verified, profiled CUDA kernels.",
    )
    parser.add_argument("--version", action="version", version=f"autotuner {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"autotuner.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"autotuner.cli.{name}_cmd":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")  # CLI only
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except AutotunerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
