"""Nothing lost: real writer processes, killed with SIGKILL or racing each other, per backend."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from archive import Archive
from archive.models import Evaluation, Kernel, ShapeRow, Task

CHILD = Path(__file__).with_name("writer_child.py")
REPO = Path(__file__).resolve().parents[2]
SHAPES = 5

pytestmark = pytest.mark.slow


def spawn(url: str, name: str, count: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, name, str(count), "--shapes", str(SHAPES), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip


def read_until(proc: subprocess.Popen[str], done: callable, timeout_s: float = 60) -> list[str]:  # type: ignore[valid-type]
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"writer exited early ({proc.wait()}): {proc.stderr.read() if proc.stderr else ''}")
        lines.append(line.strip())
        if done(lines):
            return lines
    pytest.fail(f"writer did not get there in {timeout_s} s; it said {lines[-5:]}")


def committed(lines: list[str]) -> set[int]:
    return {int(line.split()[1]) for line in lines if line.startswith("committed")}


def kill(proc: subprocess.Popen[str]) -> list[str]:
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return rest.splitlines()


def stored(url: str) -> dict[int, tuple[int, int]]:
    """evaluation id -> (shape rows declared, shape rows present), read by a fresh process-like open."""
    with Archive.open(url) as archive, archive.db.read() as s:
        present = dict(s.execute(select(ShapeRow.evaluation_id, func.count()).group_by(ShapeRow.evaluation_id)).all())
        if archive.backend == "sqlite":
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        return {eid: (n, present.get(eid, 0)) for eid, n in s.execute(select(Evaluation.id, Evaluation.n_shapes))}


def test_sigkill_inside_a_transaction_leaves_nothing_half_written(db_url: str) -> None:
    proc = spawn(db_url, "k", 1000, "--hang-at", "6")
    lines = read_until(proc, lambda ls: ls[-1] == "mid-transaction")
    lines += kill(proc)
    ids = committed(lines)
    assert len(ids) == 5
    rows = stored(db_url)
    assert set(rows) == ids  # the sixth evaluation row, written but not committed, is gone
    assert all(declared == present == SHAPES for declared, present in rows.values())


def test_sigkill_at_a_random_moment_loses_nothing_committed(db_url: str) -> None:
    proc = spawn(db_url, "k", 100_000)
    lines = read_until(proc, lambda ls: len(committed(ls)) >= 15)
    time.sleep(random.uniform(0, 0.05))
    lines += kill(proc)
    ids = committed(lines)
    rows = stored(db_url)
    assert ids <= set(rows)
    assert len(set(rows) - ids) <= 1  # at most the one committed after its last report
    assert all(declared == present == SHAPES for declared, present in rows.values())
    with Archive.open(db_url) as archive:  # and the archive takes writes again
        assert archive.stats()["evaluations"] == len(rows)


def test_four_concurrent_writers_lose_and_duplicate_nothing(db_url: str) -> None:
    count = 30
    procs = [spawn(db_url, f"w{i}", count) for i in range(4)]  # also races to create the schema
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(committed(out.splitlines()))
    ids = set().union(*outputs)
    assert sum(len(o) for o in outputs) == len(ids) == 4 * count
    rows = stored(db_url)
    assert set(rows) == ids
    assert all(declared == present == SHAPES for declared, present in rows.values())
    with Archive.open(db_url) as archive, archive.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 1
        shared, own = count // 2, count // 2
        assert s.scalar(select(func.count()).select_from(Kernel)) == shared + 4 * own
