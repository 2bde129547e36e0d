"""What a run has already done, read back from the archive alone: how a killed run resumes.

Each function works inside the caller's read transaction (a ``Session`` from
``Database.read()``); callers outside the archive reach them through ``Archive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from archive.convert import to_result
from archive.models import TASKS_STOPPED, Evaluation, Kernel, KernelParent, Run, Task
from archive.queries import current_harness
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


def _run(session: Session, run_id: int, where: str) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id} in {where}")
    return run


def run_config(session: Session, run_id: int, where: str = "the archive") -> tuple[dict[str, Any], str]:
    """The stored configuration and status of run ``run_id``."""
    run = _run(session, run_id, where)
    return dict(run.config or {}), run.status


def run_error(session: Session, run_id: int, where: str = "the archive") -> str | None:
    """Why run ``run_id`` failed, as recorded when it stopped (None if it did not fail)."""
    return _run(session, run_id, where).error


def tasks_stopped(session: Session, run_id: int, where: str = "the archive") -> dict[str, str]:
    """Task content hash -> why run ``run_id`` stopped searching it (``store.mark_task_stopped``)."""
    return dict((_run(session, run_id, where).budgets_spent or {}).get(TASKS_STOPPED) or {})


def latest_run(session: Session, status: str | tuple[str, ...] | None = None) -> int | None:
    """The newest run, or the newest with ``status`` (one, or any of several)."""
    stmt = select(Run.id).order_by(Run.id.desc()).limit(1)
    if status:
        stmt = stmt.where(Run.status.in_((status,) if isinstance(status, str) else status))
    return session.scalar(stmt)


def run_history(session: Session, run_id: int) -> list[HistoryItem]:
    """Every evaluation recorded under ``run_id``, oldest first, with its kernel."""
    stmt = (select(Evaluation).where(Evaluation.run_id == run_id).order_by(Evaluation.id)
            .options(selectinload(Evaluation.shapes)))
    return evaluation_items(session, list(session.scalars(stmt)))


def evaluation_items(session: Session, evaluations: list[Evaluation]) -> list[HistoryItem]:
    """``evaluations`` (loaded with their shapes) as history items, each with its kernel and lineage."""
    kernel_ids = {ev.kernel_id for ev in evaluations}
    kernels = {k.id: k for k in session.scalars(select(Kernel).where(Kernel.id.in_(kernel_ids)).options(
        selectinload(Kernel.task)))} if kernel_ids else {}
    parents: dict[int, list[int]] = {}
    if kernel_ids:
        for link in session.scalars(select(KernelParent).where(KernelParent.kernel_id.in_(kernel_ids))
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


def related_examples(session: Session, family: str, exclude_task_hash: str, limit: int = 2) -> list[str]:
    """Sources of the fastest current, accepted kernels of other tasks in the same family.

    What the LLM sees as examples: proven kernels for similar ops (a softmax helps a
    log-softmax), never a stale result and never the task being solved.
    """
    stmt = (select(Kernel.source, Kernel.task_id, Evaluation.speedup_eager)
            .join(Evaluation, Evaluation.kernel_id == Kernel.id)
            .join(Task, Task.id == Kernel.task_id)
            .where(Task.family == family, Task.content_hash != exclude_task_hash,
                   Evaluation.verdict == "accepted", Evaluation.harness_version == current_harness())
            .order_by(Evaluation.speedup_eager.desc().nulls_last())
            .limit(50))
    seen_tasks: set[int] = set()
    sources = []
    for source, task_id, _ in session.execute(stmt):
        if task_id in seen_tasks:
            continue
        seen_tasks.add(task_id)
        sources.append(source)
        if len(sources) >= limit:
            break
    return sources
