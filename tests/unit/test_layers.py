"""Floors strictly downward: the import contract in pyproject holds, and it can fail."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
lint = pytest.importorskip("importlinter.cli", reason="import-linter comes with the dev extra").lint_imports


def test_import_contract_holds(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(PYPROJECT.parent)
    assert lint(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0


def test_contract_catches_a_back_arrow(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """With the search put below the archive it imports, the contract breaks: the check is not vacuous."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert all("ignore_imports" not in contract for contract in config["contracts"]), "no exceptions are listed"
    text = PYPROJECT.read_text()
    swapped = text.replace('    "evolution",\n    "archive",\n', '    "archive",\n    "evolution",\n', 1)
    assert swapped != text
    broken = tmp_path / "pyproject.toml"
    broken.write_text(swapped)
    monkeypatch.chdir(PYPROJECT.parent)
    assert lint(config_filename=str(broken), no_cache=True, no_logo=True) == 1
