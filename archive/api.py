"""``Archive``: the one object the evolution, the CLI, deploy and export talk to.

Contract (the same on every backend; ``tests/archive`` runs one test class against each):

* ``Archive.open(url)`` resolves the URL (``--db`` > ``$AUTOTUNER_DB_URL`` > the default
  SQLite file), brings the schema to the newest revision and returns a ready archive; it
  raises ``ArchiveUnreachableError`` (no password in the message) when it cannot.
* Every public method is one transaction. ``record`` stores a task, a kernel and one
  evaluation with all its shape rows atomically: a writer killed at any instant leaves
  either all of it or none of it. Writes from several processes at once are safe.
* Reads never present a result of an older harness as current: stale evaluations are left
  out unless ``include_stale=True``, and then every row says ``stale``.
* Unknown ids raise ``NotFoundError``; other refusals ``ArchiveError``.
* An ``Archive`` may be shared by threads (each call opens its own session); open one per
  process (engines must not cross ``fork``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exc, select
from sqlalchemy.orm import selectinload

from archive import claims, history, lineage, queries, ranking, store, transfer
from archive import browse  # the browser's pages (autotuner archive serve)
from archive.convert import to_result
from archive.db import Database, check_sqlite_target, first_open_lock, redact, resolve_url, sqlite_path, translate
from archive.migrate import current_revision, upgrade
from archive.models import Evaluation, Kernel
from archive.rows import BestRow, KernelDetail, KernelDiff, KernelRow, LeaderRow, LineageRow, StaleRow, TaskRow
from autotuner.errors import ArchiveUnreachableError, NotFoundError
from autotuner.evaluator.verdict import EvalResult, Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    task_id: int
    kernel_id: int
    evaluation_id: int


class Archive:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str | None = None, create: bool = True) -> Archive:
        """Open (and migrate) the archive at ``url``; ``create=False`` refuses a missing SQLite file."""
        resolved = resolve_url(url)
        path = sqlite_path(resolved)
        if not create and path is not None and not path.exists():
            raise ArchiveUnreachableError(
                f"no archive at {path}: it is created by the first evaluation that is recorded, "
                f"or by `autotuner archive init`; or point --db / $AUTOTUNER_DB_URL at another one"
            )
        with first_open_lock(check_sqlite_target(resolved)):
            db = Database(resolved)
            try:
                upgrade(db.engine)
            except exc.SQLAlchemyError as e:
                db.dispose()
                raise translate(e, resolved) from None
            except BaseException:
                db.dispose()
                raise
        log.debug("archive open at %s", redact(resolved))
        return cls(db)

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return redact(self.db.url)

    @property
    def backend(self) -> str:
        return self.db.backend

    def revision(self) -> str | None:
        return current_revision(self.db.engine)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def record(self, task: store.TaskLike, kernel: store.KernelSpec, result: EvalResult, run_id: int | None = None,
               claim: claims.ClaimState | None = None) -> Recorded:
        """Store one evaluation (with its task and kernel, deduplicated) in one transaction;
        with ``claim`` (from ``claim_work``), mark that claim done in the same transaction. A
        harness error (``Verdict.ERROR``: out of memory another process caused, a broken
        harness) says nothing about the kernel: it is kept, and the claim given back, so that
        a resumed run or another driver evaluates that setting again."""
        with self.db.write() as s:
            task_id = store.upsert_task(s, task)
            kernel_id = store.add_kernel(s, task_id, kernel)
            (eval_id,) = store.record_evaluations(s, [(kernel_id, result)], run_id=run_id)
            if claim is not None and result.verdict is Verdict.ERROR:
                claims.release(s, claim.owner, [claim.claim_id])
            elif claim is not None:
                claims.complete(s, claim.claim_id, eval_id, claim.owner)
        return Recorded(task_id, kernel_id, eval_id)

    def upsert_task(self, task: store.TaskLike) -> int:
        with self.db.write() as s:
            return store.upsert_task(s, task)

    def add_kernel(self, task_id: int, spec: store.KernelSpec) -> int:
        with self.db.write() as s:
            return store.add_kernel(s, task_id, spec)

    def record_evaluation(self, kernel_id: int, result: EvalResult, run_id: int | None = None) -> int:
        with self.db.write() as s:
            return store.record_evaluations(s, [(kernel_id, result)], run_id=run_id)[0]

    def record_evaluations(self, items: Sequence[tuple[int, EvalResult]], run_id: int | None = None) -> list[int]:
        """A batch of evaluations in one transaction (all or none)."""
        with self.db.write() as s:
            return store.record_evaluations(s, items, run_id=run_id)

    def start_run(self, config: dict[str, Any]) -> int:
        with self.db.write() as s:
            return store.start_run(s, config)

    def finish_run(self, run_id: int, status: str, budgets_spent: dict[str, Any], error: str | None = None) -> None:
        """Close run ``run_id``; ``error`` says why it failed (shown by ``tune --resume``)."""
        with self.db.write() as s:
            store.finish_run(s, run_id, status, budgets_spent, error)

    def record_llm_call(self, call: store.LLMCallRecord) -> int:
        with self.db.write() as s:
            return store.record_llm_call(s, call)

    def import_jsonl(self, path: str | Path) -> Counter[str]:
        """Import an export file in one transaction; a bad line leaves the archive unchanged."""
        with self.db.write() as s:
            return transfer.import_jsonl(s, path)

    # -- reading -------------------------------------------------------------------------

    def result(self, evaluation_id: int) -> EvalResult:
        """The stored evaluation as the evaluator's own type (for feedback to proposers)."""
        with self.db.read() as s:
            stmt = select(Evaluation).where(Evaluation.id == evaluation_id).options(selectinload(Evaluation.shapes))
            ev = s.scalar(stmt)
            if ev is None:
                raise NotFoundError(f"no evaluation with id {evaluation_id} in the archive")
            kernel = s.get(Kernel, ev.kernel_id)
            assert kernel is not None  # foreign key
            return to_result(ev, task_name=kernel.task.name, task_hash=kernel.task.content_hash,
                             candidate_hash=kernel.source_hash)  # fmt: skip

    def tasks(self, include_stale: bool = False) -> list[TaskRow]:
        with self.db.read() as s:
            return queries.list_tasks(s, include_stale=include_stale)

    def kernels(self, task: str, **filters: Any) -> list[KernelRow]:
        """Kernels of a task; filters: gpu, dtype, verdict, min_speedup, proposer, include_stale, limit."""
        with self.db.read() as s:
            return queries.list_kernels(s, task, **filters)

    def kernel(self, kernel_id: int) -> KernelDetail:
        with self.db.read() as s:
            return queries.show_kernel(s, kernel_id)

    def best(self, task: str | None = None, gpu: str | None = None, policy: str | None = None,
             include_stale: bool = False, top: int = 1) -> list[BestRow]:  # fmt: skip
        with self.db.read() as s:
            return ranking.best(s, task=task, gpu=gpu, policy=policy, include_stale=include_stale, top=top)

    def leaderboard(self, gpu: str | None = None, policy: str | None = None, p: float = 1.0,
                    include_stale: bool = False) -> list[LeaderRow]:  # fmt: skip
        with self.db.read() as s:
            return ranking.leaderboard(s, gpu=gpu, policy=policy, p=p, include_stale=include_stale)

    def lineage(self, kernel_id: int) -> list[LineageRow]:
        """The kernel, its ancestors (negative generations) and its descendants (positive)."""
        with self.db.read() as s:
            return queries.lineage(s, kernel_id)

    def task_lineage(self, task: str) -> list[LineageRow]:
        """Every kernel of a task (id, name or hash prefix) with its parents; generation 0: roots."""
        with self.db.read() as s:
            return lineage.task_lineage(s, task)

    def diff(self, a: int, b: int) -> KernelDiff:
        with self.db.read() as s:
            return queries.diff_kernels(s, a, b)

    def stale(self, gpu: str | None = None, limit: int | None = None) -> list[StaleRow]:
        with self.db.read() as s:
            return ranking.stale_kernels(s, gpu=gpu, limit=limit)

    def stats(self) -> dict[str, Any]:
        with self.db.read() as s:
            data = queries.stats(s)
        return {"url": self.url, "backend": self.backend, "schema_revision": self.revision(), **data}

    def export_jsonl(self, out: IO[str]) -> Counter[str]:
        with self.db.read() as s:
            return transfer.export_jsonl(s, out)

    def task_source(self, task_hash: str) -> str:
        """The task file's text as stored (deploy and export re-verify kernels against it)."""
        with self.db.read() as s:
            return queries.task_source(s, task_hash)

    # -- runs: what a run did, read back to resume it --------------------------------------

    def latest_run(self, status: str | tuple[str, ...] | None = None) -> int | None:
        """The newest run's id, or the newest with ``status`` (one, or any of several)."""
        with self.db.read() as s:
            return history.latest_run(s, status)

    def run_config(self, run_id: int) -> tuple[dict[str, Any], str]:
        """The configuration stored with run ``run_id``, and its status."""
        with self.db.read() as s:
            return history.run_config(s, run_id, f"the archive at {self.url}")

    def run_error(self, run_id: int) -> str | None:
        """Why run ``run_id`` failed (None if it did not)."""
        with self.db.read() as s:
            return history.run_error(s, run_id, f"the archive at {self.url}")

    def mark_task_stopped(self, run_id: int, task_hash: str, reason: str) -> None:
        """Record that run ``run_id`` is done with a task and why, so a resumed run skips it."""
        with self.db.write() as s:
            store.mark_task_stopped(s, run_id, task_hash, reason)

    def run_tasks_stopped(self, run_id: int) -> dict[str, str]:
        """Task content hash -> why run ``run_id`` stopped searching it (tasks it is done with)."""
        with self.db.read() as s:
            return history.tasks_stopped(s, run_id, f"the archive at {self.url}")

    def run_history(self, run_id: int) -> list[history.HistoryItem]:
        """Every evaluation recorded under ``run_id``, oldest first, with its kernel."""
        with self.db.read() as s:
            return history.run_history(s, run_id)

    def related_examples(self, family: str, exclude_task_hash: str, limit: int = 2) -> list[str]:
        """Sources of the fastest current, accepted kernels of other tasks in ``family`` (prompt examples)."""
        with self.db.read() as s:
            return history.related_examples(s, family, exclude_task_hash, limit)

    # -- work shared between drivers: claims and the novelty filter's state ----------------

    def claim_work(self, scope: str, task_hash: str, source_hash: str, settings: Sequence[dict[str, Any]],
                   owner: str, run_id: int | None = None, lease_s: float = 120.0) -> list[claims.ClaimState]:
        """Claim each setting of one candidate for ``owner`` (atomically, across processes and
        machines): ``mine`` to evaluate, ``done`` with its evaluation, or ``held`` by a live driver.
        A running claim not renewed for ``lease_s`` seconds is taken over."""
        return self.db.write_retrying(
            lambda s: claims.claim(s, scope, task_hash, source_hash, settings, owner, run_id, lease_s))

    def renew_claims(self, owner: str) -> int:
        """Heartbeat: keep ``owner``'s running claims alive; returns how many it holds."""
        with self.db.write() as s:
            return claims.renew(s, owner)

    def release_claims(self, owner: str, claim_ids: Sequence[int] | None = None) -> int:
        """Give back ``owner``'s running claims (all, or ``claim_ids``) without a result."""
        with self.db.write() as s:
            return claims.release(s, owner, claim_ids)

    def release_run_claims(self, run_id: int, keep_owner: str | None = None) -> int:
        """Give back what run ``run_id``'s killed driver left in flight (``tune --resume``)."""
        with self.db.write() as s:
            return claims.release_run(s, run_id, keep_owner)

    def finished_work(self, scope: str, task_hash: str) -> list[history.HistoryItem]:
        """Every evaluation of the task done under a claim of ``scope``, by any driver, oldest first."""
        with self.db.read() as s:
            return claims.finished(s, scope, task_hash)

    def work_claims(self, run_id: int | None = None) -> list[claims.ClaimRow]:
        """The claims as stored (all, or one run's)."""
        with self.db.read() as s:
            return claims.claims_of(s, run_id)

    def admit_source(self, task_hash: str, fingerprint: str, source_hash: str, source: str,
                     run_id: int | None = None) -> str:
        """Record a source the novelty filter admitted; returns the source hash that holds its
        fingerprint (another one: a differently written copy of the same code came first)."""
        with self.db.write() as s:
            return claims.admit(s, task_hash, fingerprint, source_hash, source, run_id)

    def admitted_sources(self, task_hash: str, after_id: int = 0) -> list[claims.AdmittedSource]:
        """Sources admitted for the task after ``after_id``, oldest first: the novelty filter's state."""
        with self.db.read() as s:
            return claims.admitted(s, task_hash, after_id)

    def optuna_storage_url(self) -> str | None:
        """Where optuna may keep shared studies: this archive's own PostgreSQL database (its tables
        and its ``alembic_version`` beside the archive's, which uses ``autotuner_alembic_version``);
        None for SQLite, whose runs keep studies in memory. The URL carries the password: hand
        it to optuna in this process, never print or store it."""
        if self.backend != "postgresql":
            return None
        return self.db.engine.url.render_as_string(hide_password=False)

    # -- the browser's pages (autotuner archive serve) ---------------------------------

    def task_detail(self, task: int | str, include_stale: bool = False) -> browse.TaskDetail:
        """One task version in full (an id; a name or hash prefix: its newest version): source,
        shapes, verdicts, reasons, winners with per-shape timings, kernels, latest evaluations."""
        with self.db.read() as s:
            return browse.task_detail(s, task, include_stale=include_stale)

    def leaderboard_page(self, gpu: str | None = None, policy: str | None = None, p: float = 1.0,
                         include_stale: bool = False) -> browse.LeaderboardPage:  # fmt: skip
        """``leaderboard`` and the ``best`` rows it is made of, ranked once."""
        with self.db.read() as s:
            return browse.leaderboard_page(s, gpu=gpu, policy=policy, p=p, include_stale=include_stale)

    def runs(self, limit: int = 100) -> list[browse.RunRow]:
        """The newest runs first, with their evaluation and LLM counts."""
        with self.db.read() as s:
            return browse.list_runs(s, limit=limit)

    def run(self, run_id: int) -> browse.RunDetail:
        """One run: configuration, spend, verdicts, its evaluations in order, LLM calls per model."""
        with self.db.read() as s:
            return browse.run_detail(s, run_id)
