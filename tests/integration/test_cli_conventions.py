"""The CLI's conventions, checked over every parser: help on every option, plain text, --json, exit codes."""

from __future__ import annotations

import argparse
import re

import pytest

from autotuner.cli.common import EXIT_CODES
from autotuner.cli.main import build_parser, main

pytestmark = pytest.mark.integration
# Commands that print results, and so must take --json (doctor too).
RESULT_COMMANDS = {"tune", "eval", "doctor", "export"} | {f"archive {a}" for a in (
    "init", "tasks", "kernels", "show", "best", "leaderboard", "lineage", "diff", "stats", "stale", "export",
    "import")} | {"deploy slots", "deploy bench", "deploy profile", "bench suite", "bench archive",
                  "bench evaluator"}  # fmt: skip


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its command line, the root as ''."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        found[prefix] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(f"{prefix} {name}".strip(), sub)

    walk("", build_parser())
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [f"{cmd or 'autotuner'}: {a.option_strings or a.dest}" for cmd, p in _parsers().items()
               for a in p._actions if not isinstance(a, argparse._SubParsersAction)
               and a.help is None]  # fmt: skip
    assert not missing, missing


def test_no_restructuredtext_markup_in_help() -> None:
    texts = [(cmd, p.format_help()) for cmd, p in _parsers().items()]
    marked = [cmd or "autotuner" for cmd, text in texts if "``" in text or re.search(r":\w+:`", text)]
    assert not marked, marked


def test_every_command_that_prints_results_takes_json() -> None:
    parsers = _parsers()
    assert RESULT_COMMANDS <= set(parsers)
    without = sorted(cmd for cmd in RESULT_COMMANDS
                     if not any("--json" in a.option_strings and a.nargs == 0 for a in parsers[cmd]._actions))
    assert not without, f"no --json flag (or one that takes a value): {without}"


def test_gpu_is_a_device_index_everywhere_and_gpu_name_filters() -> None:
    for cmd, parser in _parsers().items():
        for action in parser._actions:
            if "--gpu" in action.option_strings:
                assert action.type is int, f"{cmd}: --gpu must be a device index"
    assert any("--gpu-name" in a.option_strings for a in _parsers()["archive best"]._actions)


def test_exit_codes_are_in_the_help_epilog(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", out, re.M), code


def test_usage_errors_exit_2_and_no_command_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["tune", "--max-candidates", "many"])
    assert info.value.code == 2
    assert main([]) == 2


@pytest.mark.parametrize(("flags", "level"), [(["-q"], "ERROR"), (["--debug"], "DEBUG"), ([], "WARNING")])
def test_quiet_and_debug_set_the_log_level(flags, level, tmp_path, capsys) -> None:
    import logging

    root = logging.getLogger()
    before = root.level
    try:
        assert main([*flags, "archive", "stats", "--db", str(tmp_path / "none.db")]) == 1  # no archive there
        assert logging.getLevelName(root.level) == level
    finally:
        root.setLevel(before)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-q", "--debug", "doctor"])
