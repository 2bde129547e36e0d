"""Opening an archive: several processes creating a new one at once, and URLs that would lose data."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from archive import Archive
from autotuner.errors import ArchiveUnreachableError

ROUNDS, PROCESSES = 30, 3


def _open_at_once(url: str, barrier, results) -> None:  # noqa: ANN001
    barrier.wait()  # every process reaches Archive.open at the same moment
    try:
        with Archive.open(url) as archive:
            archive.tasks()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which asserts on it
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_processes_creating_a_new_sqlite_archive_together_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")  # modules already imported: the children race on the open itself
    failures = []
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'archive-{round_}.db'}"
        barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
        outcomes = [results.get(timeout=10) for _ in procs]
        failures += [f"round {round_}: {o}" for o in outcomes if o != "ok"]
        assert all(p.exitcode == 0 for p in procs)
    assert not failures, failures


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_archive_is_refused(url: str) -> None:
    with pytest.raises(ArchiveUnreachableError, match="in-memory"):
        Archive.open(url)


def test_a_path_in_a_missing_folder_is_refused_not_created(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "archive.db"
    for url in (str(target), f"sqlite:///{target}"):
        with pytest.raises(ArchiveUnreachableError, match="does not exist"):
            Archive.open(url)
    assert not target.parent.exists()
