"""What a run has already done, read back from the archive alone: how a killed run resumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from archive.convert import to_result
from archive.models import Evaluation, Kernel, KernelParent, Run
from autotuner.errors import NotFoundError
from autotuner.evaluator.verdict import EvalResult


@dataclass(frozen=True)
class HistoryItem:
    kernel_id: int
    task_hash: str
    source: str
    source_hash: str
    params: dict[str, Any]
    operator: str | None
    proposer: str | None
    parents: tuple[int, ...]
    evaluation_id: int
    result: EvalResult


def run_config(archive: Any, run_id: int) -> tuple[dict[str, Any], str]:
    """The stored configuration and status of run ``run_id``."""
    with archive.db.read() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run with id {run_id} in the archive at {archive.url}")
        return dict(run.config or {}), run.status


def run_error(archive: Any, run_id: int) -> str | None:
    """Why run ``run_id`` failed, as recorded when it stopped (None if it did not fail)."""
    with archive.db.read() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run with id {run_id} in the archive at {archive.url}")
        return run.error


def latest_run(archive: Any, status: str | tuple[str, ...] | None = None) -> int | None:
    """The newest run, or the newest with ``status`` (one, or any of several)."""
    with archive.db.read() as s:
        stmt = select(Run.id).order_by(Run.id.desc()).limit(1)
        if status:
            stmt = stmt.where(Run.status.in_((status,) if isinstance(status, str) else status))
        return s.scalar(stmt)


def run_history(archive: Any, run_id: int) -> list[HistoryItem]:
    """Every evaluation recorded under ``run_id``, oldest first, with its kernel."""
    with archive.db.read() as s:
        stmt = (select(Evaluation).where(Evaluation.run_id == run_id).order_by(Evaluation.id)
                .options(selectinload(Evaluation.shapes)))
        evaluations = list(s.scalars(stmt))
        kernel_ids = {ev.kernel_id for ev in evaluations}
        kernels = {k.id: k for k in s.scalars(select(Kernel).where(Kernel.id.in_(kernel_ids)).options(
            selectinload(Kernel.task)))} if kernel_ids else {}
        parents: dict[int, list[int]] = {}
        if kernel_ids:
            for link in s.scalars(select(KernelParent).where(KernelParent.kernel_id.in_(kernel_ids))
                                  .order_by(KernelParent.position)):
                parents.setdefault(link.kernel_id, []).append(link.parent_id)
        items = []
        for ev in evaluations:
            kernel = kernels[ev.kernel_id]
            result = to_result(ev, task_name=kernel.task.name, task_hash=kernel.task.content_hash,
                               candidate_hash=kernel.source_hash)
            items.append(HistoryItem(kernel.id, kernel.task.content_hash, kernel.source, kernel.source_hash,
                                     dict(kernel.params or {}), kernel.operator, kernel.proposer,
                                     tuple(parents.get(kernel.id, ())), ev.id, result))
        return items


def related_examples(archive: Any, family: str, exclude_task_hash: str, limit: int = 2) -> list[str]:
    """Sources of the fastest current, accepted kernels of other tasks in the same family.

    What the LLM sees as examples: proven kernels for similar ops (a softmax helps a
    log-softmax), never a stale result and never the task being solved.
    """
    from autotuner import HARNESS_VERSION
    from archive.models import Task

    with archive.db.read() as s:
        stmt = (select(Kernel.source, Kernel.task_id, Evaluation.speedup_eager)
                .join(Evaluation, Evaluation.kernel_id == Kernel.id)
                .join(Task, Task.id == Kernel.task_id)
                .where(Task.family == family, Task.content_hash != exclude_task_hash,
                       Evaluation.verdict == "accepted", Evaluation.harness_version == HARNESS_VERSION)
                .order_by(Evaluation.speedup_eager.desc().nulls_last())
                .limit(50))
        seen_tasks: set[int] = set()
        sources = []
        for source, task_id, _ in s.execute(stmt):
            if task_id in seen_tasks:
                continue
            seen_tasks.add(task_id)
            sources.append(source)
            if len(sources) >= limit:
                break
        return sources
