"""An export ends with a trailer of counts, so a file cut at a line boundary is caught on import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive import Archive, KernelSpec
from archive.testing import make_result, make_task
from autotuner.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def export(tmp_path: Path) -> Path:
    db = f"sqlite:///{tmp_path / 'source.db'}"
    task = make_task()
    with Archive.open(db) as a:
        for i in range(3):
            a.record(task, KernelSpec(f"// {i}\n"), make_result(task, candidate_ms=0.1 * (i + 1)))
    path = tmp_path / "export.jsonl"
    assert main(["archive", "export", str(path), "--db", db]) == 0
    return path


def _evaluations(db: Path) -> int:
    with Archive.open(str(db)) as a:
        return a.stats()["evaluations"]


def test_the_export_ends_with_a_trailer_of_counts(export: Path) -> None:
    last = json.loads(export.read_text().splitlines()[-1])
    assert last == {"kind": "trailer", "counts": {"task": 1, "kernel": 3, "evaluation": 3}}


@pytest.mark.parametrize("keep", [-1, -2, 2])  # lines kept: without the trailer, or cut further
def test_a_file_cut_at_a_line_boundary_is_refused_and_nothing_imported(export, tmp_path, capsys, keep) -> None:
    lines = export.read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:keep]))
    target = tmp_path / "target.db"
    assert main(["archive", "import", str(cut), "--db", str(target)]) == 1
    err = capsys.readouterr().err
    assert "cut short" in err and "nothing was imported" in err and err.count("\n") == 1
    assert _evaluations(target) == 0


def test_a_trailer_that_disagrees_is_refused(export, tmp_path, capsys) -> None:
    lines = export.read_text().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(lines[:-2] + lines[-1:]))  # an evaluation line lost in the middle
    assert main(["archive", "import", str(damaged), "--db", str(tmp_path / "t.db")]) == 1
    assert "the trailer counts" in capsys.readouterr().err


def test_a_version_1_export_is_imported_with_a_warning_and_a_nonzero_exit(export, tmp_path, capsys) -> None:
    lines = export.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    old = tmp_path / "v1.jsonl"
    old.write_text(json.dumps({**header, "version": 1}) + "\n" + "".join(lines[1:-1]))  # v1 had no trailer
    target = tmp_path / "t.db"
    assert main(["archive", "import", str(old), "--db", str(target)]) == 1
    out, err = capsys.readouterr()
    assert "3 evaluation" in out and "version-1 export" in err and "cannot be checked" in err
    assert _evaluations(target) == 3
