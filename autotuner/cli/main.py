"""``autotuner`` entry point: one module per subcommand, each with ``register(subparsers)``.

A subcommand module's ``register`` adds its parser and sets ``func`` to a function taking the
parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from autotuner import __version__
from autotuner.cli.common import EXIT_CODES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE
from autotuner.errors import AutotunerError

# Modules under autotuner.cli, in the order `autotuner --help` lists them.
SUBCOMMANDS = ("tune", "eval", "doctor", "archive", "bench", "deploy", "export")


def _epilog() -> str:
    codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"exit codes:\n{codes}\n\nEvery command that prints results takes --json (JSON on stdout)."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotuner",
        description="Turn PyTorch references into verified, profiled CUDA kernels.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"autotuner {__version__}")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="errors only (no warnings or notes in the log)")
    noise.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    noise.add_argument("--debug", action="store_true", help="debug log output, and a traceback with every error")
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
    if args.quiet:
        level = logging.ERROR
    elif args.debug:
        level = logging.DEBUG
    else:
        level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # CLI only
    logging.getLogger().setLevel(level)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except AutotunerError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
