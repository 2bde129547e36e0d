"""Floors strictly downward, the archive only through its facade: the import contracts in
pyproject hold, list no exceptions, and each of them can fail."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
lint = pytest.importorskip("importlinter.cli", reason="import-linter comes with the dev extra").lint_imports


def _lint(config: Path) -> int:
    return lint(config_filename=str(config), no_cache=True, no_logo=True)


def test_import_contracts_hold_with_no_exceptions(monkeypatch) -> None:  # noqa: ANN001
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert {c["type"] for c in config["contracts"]} == {"layers", "protected"}
    assert all("ignore_imports" not in contract for contract in config["contracts"]), "no exceptions are listed"
    monkeypatch.chdir(PYPROJECT.parent)
    assert _lint(PYPROJECT) == 0


def test_layers_catch_a_back_arrow(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """With the search put below the archive it imports, the contract breaks: the check is not vacuous."""
    text = PYPROJECT.read_text()
    swapped = text.replace('    "evolution",\n    "archive",\n', '    "archive",\n    "evolution",\n', 1)
    assert swapped != text
    broken = tmp_path / "pyproject.toml"
    broken.write_text(swapped)
    monkeypatch.chdir(PYPROJECT.parent)
    assert _lint(broken) == 1


def test_facade_contract_catches_a_reach_into_the_archive(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """A package outside archive/ that imports archive.models breaks the facade contract."""
    package = tmp_path / "site" / "reacher"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from archive.models import Kernel  # past the facade\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    text = PYPROJECT.read_text()
    config = tmp_path / "pyproject.toml"
    roots = 'root_packages = ["autotuner", "evolution", "archive"]'
    assert roots in text
    config.write_text(text.replace(roots, 'root_packages = ["autotuner", "evolution", "archive", "reacher"]'))
    monkeypatch.chdir(PYPROJECT.parent)
    assert _lint(config) == 1
