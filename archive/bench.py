"""How fast the archive writes and ranks, measured on a throwaway database.

Fills a fresh database (a temporary SQLite file, or a fresh schema on a PostgreSQL server)
with N evaluations of ~200 tasks on four GPUs, written in batches (one transaction per
batch) through the same code path the evolution uses, then times a sample written one
transaction per evaluation, then the median latency of ``best`` and ``leaderboard`` with the
ranking indexes and again with only the indexes of revision 0001, before them. The database is dropped at the end.
"""

from __future__ import annotations

import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

import autotuner
from archive.api import Archive
from archive.convert import params_hash
from archive.db import redact, resolve_url, sqlite_path
from archive.models import Kernel
from archive.store import KernelSpec, TaskRecord, upsert_task
from archive.testing import GPUS, make_result, make_task, postgres_schema
from autotuner.candidate import source_hash
from autotuner.errors import ArchiveError
from autotuner.evaluator.verdict import Verdict

log = logging.getLogger(__name__)


@dataclass
class BenchReport:
    backend: str
    url: str
    evaluations: int
    tasks: int
    kernels: int
    gpus: int
    shapes_per_evaluation: int
    batch: int
    insert_s: float
    insert_per_s: float
    single_tx_evaluations: int
    single_tx_per_s: float
    repeats: int
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_ms_without_indexes: dict[str, float] = field(default_factory=dict)


@contextmanager
def throwaway(url: str | None) -> Iterator[str]:
    """A fresh, empty database for ``url``'s backend, removed afterwards.

    ``None`` or "sqlite": a temporary file. A SQLite URL: that file, which must not exist yet.
    A PostgreSQL URL: a new schema on that server and database.
    """
    if url in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="autotuner-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    resolved = resolve_url(url)
    path = sqlite_path(resolved)
    if resolved.startswith("sqlite"):
        if path is None or path.exists():
            raise ArchiveError(f"refusing to benchmark into {redact(resolved)}: give a SQLite file that does not exist yet")
        try:
            yield resolved
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with postgres_schema(resolved, prefix="bench") as schema_url:
        yield schema_url


def _make_kernels(archive: Archive, tasks: list[TaskRecord], per_task: int) -> list[tuple[int, TaskRecord]]:
    """Tasks and their kernels, inserted in bulk (setup, not part of the timed insert)."""
    out: list[tuple[int, TaskRecord]] = []
    with archive.db.write() as s:
        for task in tasks:
            task_id = upsert_task(s, task)
            rows = []
            for k in range(per_task):
                source, params = f"// {task.name} variant {k}\n__global__ void k() {{}}\n", {"BLOCK": 64 << (k % 4)}
                rows.append({"task_id": task_id, "source": source, "source_hash": source_hash(source),
                             "params": params, "params_hash": params_hash(params), "language": "cuda",
                             "operator": "mutate", "proposer": "llm" if k % 2 else "rules"})  # fmt: skip
            ids = s.scalars(insert(Kernel).returning(Kernel.id, sort_by_parameter_order=True), rows)
            out.extend((kid, task) for kid in ids)
    return out


def _results(kernels: list[tuple[int, TaskRecord]], n: int, rng: random.Random) -> Iterator[tuple[int, TaskRecord, Any]]:
    base_ms = {task.name: rng.uniform(0.01, 5.0) for _, task in kernels}
    for _ in range(n):
        kernel_id, task = rng.choice(kernels)
        roll = rng.random()
        verdict = Verdict.ACCEPTED if roll < 0.6 else Verdict.REJECTED if roll < 0.95 else Verdict.ERROR
        eager = base_ms[task.name]
        result = make_result(
            task, verdict=verdict, candidate_ms=eager * rng.lognormvariate(-0.2, 0.5), eager_ms=eager,
            compiled_ms=eager * rng.uniform(0.6, 1.0), gpu=rng.choice(GPUS),
            harness_version=autotuner.HARNESS_VERSION if rng.random() < 0.9 else "0", rng=rng,
        )  # fmt: skip
        yield kernel_id, task, result


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm caches and the connection pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# More timed cases from above the archive (the browser's pages): archive -> {name: call}.
ExtraCases = Callable[[Archive], dict[str, Callable[[], Any]]]


def _latencies(archive: Archive, repeats: int, extra: ExtraCases | None = None) -> dict[str, float]:
    one_task = archive.tasks()[len(archive.tasks()) // 2].name
    cases = {
        "best (all tasks, all GPUs)": lambda: archive.best(),
        "best (one task, one GPU)": lambda: archive.best(task=one_task, gpu="H100"),
        "leaderboard (all GPUs)": lambda: archive.leaderboard(),
        "leaderboard (one GPU)": lambda: archive.leaderboard(gpu="H100"),
        **(extra(archive) if extra else {}),
    }
    return {name: _median_ms(fn, repeats) for name, fn in cases.items()}


def _analyze(archive: Archive) -> None:
    """Planner statistics, and on PostgreSQL the visibility map that index-only scans need:
    the state autovacuum brings a table to shortly after a bulk load."""
    if archive.backend == "postgresql":
        with archive.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE evaluations"))
        return
    with archive.db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def run_bench(url: str | None = None, evaluations: int = 100_000, tasks: int = 200, batch: int = 500,
              single: int = 300, repeats: int = 7, seed: int = 0,
              progress: Callable[[str], None] | None = None, extra: ExtraCases | None = None) -> BenchReport:  # fmt: skip
    """Run the benchmark on a throwaway database of ``url``'s backend; see the module doc.
    ``extra`` adds timed cases (the browser's pages: ``autotuner.web.bench.page_cases``)."""
    say = progress or log.info
    rng = random.Random(seed)
    with throwaway(url) as db_url, Archive.open(db_url) as archive:
        task_list = [make_task(f"task{i:03d}", dtype=rng.choice(["float32", "bfloat16"]),
                               policy="hybrid" if i % 10 == 0 else "strict") for i in range(tasks)]  # fmt: skip
        kernels = _make_kernels(archive, task_list, max(1, evaluations // (tasks * 4)))
        say(f"{archive.backend}: {len(task_list)} tasks, {len(kernels)} kernels; inserting {evaluations} evaluations")
        pending = [(kernel_id, result) for kernel_id, _, result in _results(kernels, evaluations, rng)]
        start = time.perf_counter()
        for i in range(0, len(pending), batch):
            archive.record_evaluations(pending[i : i + batch])
        insert_s = time.perf_counter() - start
        say(f"batched insert: {evaluations / insert_s:,.0f} evaluations/s; now {single} one per transaction")
        start = time.perf_counter()
        for j, (_, task, result) in enumerate(_results(kernels, single, rng)):
            archive.record(task, KernelSpec(f"// single {j}\n", proposer="llm", operator="fix"), result)
        single_s = time.perf_counter() - start
        _analyze(archive)
        say("timing best / leaderboard with the ranking indexes")
        with_idx = _latencies(archive, repeats, extra)
        drop_ranking_indexes(archive)
        _analyze(archive)
        say("timing best / leaderboard without them (the indexes of revision 0001)")
        without_idx = _latencies(archive, repeats, extra)
        return BenchReport(
            backend=archive.backend, url=redact(db_url), evaluations=evaluations, tasks=tasks,
            kernels=len(kernels), gpus=len(GPUS), shapes_per_evaluation=3, batch=batch, insert_s=insert_s,
            insert_per_s=evaluations / insert_s, single_tx_evaluations=single, single_tx_per_s=single / single_s,
            repeats=repeats, latency_ms=with_idx, latency_ms_without_indexes=without_idx,
        )  # fmt: skip


# The indexes revision 0002 added for best / leaderboard (it replaced the plain kernel_id index).
RANKING_INDEXES = ("ix_evaluations_ranking", "ix_evaluations_kernel_gpu", "ix_evaluations_scope")


def drop_ranking_indexes(archive: Archive) -> None:
    """Back to revision 0001's indexes on ``evaluations``, every later column kept (a downgrade
    to 0001 would drop columns the queries select since)."""
    with archive.db.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_evaluations_kernel_id ON evaluations (kernel_id)"))
        for name in RANKING_INDEXES:
            conn.execute(text(f"DROP INDEX {name}"))


def fill_archive(archive: Archive, evaluations: int, tasks: int = 20, seed: int = 0, batch: int = 500) -> None:
    """Fill ``archive`` the way the benchmark does (``tasks`` tasks on four GPUs, 60 % accepted,
    10 % by an older harness), for tests that need a larger archive."""
    rng = random.Random(seed)
    task_list = [make_task(f"task{i:03d}", dtype=rng.choice(["float32", "bfloat16"]),
                           policy="hybrid" if i % 10 == 0 else "strict") for i in range(tasks)]  # fmt: skip
    kernels = _make_kernels(archive, task_list, max(1, evaluations // (tasks * 4)))
    pending = [(kernel_id, result) for kernel_id, _, result in _results(kernels, evaluations, rng)]
    for i in range(0, len(pending), batch):
        archive.record_evaluations(pending[i : i + batch])
    _analyze(archive)
