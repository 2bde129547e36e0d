"""The write side: tasks, kernels, evaluations, runs and LLM calls.

Each function works inside the caller's transaction (a ``Session`` from
``Database.write()``), so "one evaluation, one transaction" is the caller's choice and a
batch can share one. Upserts are ``INSERT ... ON CONFLICT DO NOTHING`` followed by a select,
so concurrent writers racing on the same task or kernel get the same row, never a duplicate
and never an integrity error.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from archive.convert import evaluation_row, params_hash, shape_rows
from archive.models import TASKS_STOPPED, Evaluation, Kernel, KernelParent, LLMCall, Run, ShapeRow, Task, utcnow
from autotuner.candidate import source_hash
from autotuner.errors import ArchiveError, NotFoundError
from autotuner.evaluator.verdict import EvalResult


class TaskLike(Protocol):
    """What the archive needs of a task: ``autotuner.tasks.Task`` satisfies it."""

    name: str
    source: str
    content_hash: str
    dtype: str
    policy: str
    family: str
    shapes: Sequence[Any]  # Shape objects (with to_json) or plain dicts


@dataclass(frozen=True)
class TaskRecord:
    """A task's stored fields without a loaded module (satisfies ``TaskLike``): imports, tests."""

    content_hash: str
    name: str
    source: str
    family: str = "misc"
    dtype: str = "float32"
    policy: str = "strict"
    shapes: tuple[Any, ...] = ()
    path: str = ""


@dataclass(frozen=True)
class KernelSpec:
    """A candidate to store: its source, one parameter setting, and who made it from what."""

    source: str
    params: dict[str, Any] = field(default_factory=dict)
    language: str = "cuda"  # cuda | load_inline | cupy
    operator: str | None = None  # translate | mutate | crossover | fix | tune | ...
    proposer: str | None = None  # rules | llm | manual | ...
    model: str | None = None
    prompt: str | None = None
    parents: tuple[int, ...] = ()
    run_id: int | None = None


@dataclass(frozen=True)
class LLMCallRecord:
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float | None = None
    cost_usd: float | None = None
    error: str | None = None
    operator: str | None = None
    cached: bool = False
    run_id: int | None = None
    kernel_id: int | None = None


_IN_CHUNK = 500  # ids per IN (...) list


def new_uid() -> str:
    return uuid.uuid4().hex


def _insert_ignore(session: Session, model: type, values: dict[str, Any], keys: list[str]) -> bool:
    """Insert the row unless one with the same ``keys`` exists; True if this call inserted it."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING says whether a row went in (the rowcount is -1 where the dialect fetches new keys itself).
    table = model.__table__
    stmt = builder(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return session.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def _shape_json(shape: Any) -> dict[str, Any]:
    return shape.to_json() if hasattr(shape, "to_json") else dict(shape)


def upsert_task(session: Session, task: TaskLike, path: str = "") -> int:
    """The task's id, inserting it if its content hash is new."""
    values = {
        "content_hash": task.content_hash,
        "name": task.name,
        "source": task.source,
        "family": task.family,
        "dtype": task.dtype,
        "policy": task.policy,
        "shapes": [_shape_json(s) for s in task.shapes],
        "path": str(path or getattr(task, "path", "") or ""),
        "created_at": utcnow(),
    }
    _insert_ignore(session, Task, values, ["content_hash"])
    return session.scalars(select(Task.id).where(Task.content_hash == task.content_hash)).one()


def add_kernel(session: Session, task_id: int, spec: KernelSpec) -> int:
    """The kernel's id, inserting it (and its lineage edges) if this source + params is new."""
    key = {"task_id": task_id, "source_hash": source_hash(spec.source), "params_hash": params_hash(spec.params)}
    if spec.parents:
        _require(session, Kernel, spec.parents, "parent kernel")
    values = {
        **key,
        "source": spec.source,
        "params": dict(spec.params),
        "language": spec.language,
        "operator": spec.operator,
        "proposer": spec.proposer,
        "model": spec.model,
        "prompt": spec.prompt,
        "run_id": spec.run_id,
        "created_at": utcnow(),
    }
    _insert_ignore(session, Kernel, values, list(key))
    kernel_id = session.scalars(select(Kernel.id).filter_by(**key)).one()
    for position, parent in enumerate(spec.parents):
        if parent != kernel_id:
            edge = {"kernel_id": kernel_id, "parent_id": parent, "position": position}
            _insert_ignore(session, KernelParent, edge, ["kernel_id", "parent_id"])
    return kernel_id


def _require(session: Session, model: type, ids: Sequence[int], what: str) -> None:
    found = set(session.scalars(select(model.id).where(model.id.in_(set(ids)))))
    missing = sorted(set(ids) - found)
    if missing:
        raise NotFoundError(f"no {what} with id {', '.join(map(str, missing))} in the archive")


def _kernel_tasks(session: Session, kernel_ids: set[int]) -> dict[int, tuple[int, str]]:
    rows = session.execute(
        select(Kernel.id, Kernel.task_id, Task.content_hash).join(Task).where(Kernel.id.in_(kernel_ids))
    )
    found = {kid: (tid, thash) for kid, tid, thash in rows}
    missing = sorted(kernel_ids - set(found))
    if missing:
        raise NotFoundError(f"no kernel with id {', '.join(map(str, missing))} in the archive")
    return found


def record_evaluations(
    session: Session,
    items: Sequence[tuple[int, EvalResult]],
    run_id: int | None = None,
    uids: Sequence[str] | None = None,
    created_at: Sequence[datetime] | None = None,
) -> list[int]:
    """Insert evaluations of existing kernels, each with all its shape rows; returns their ids.

    ``uids`` / ``created_at`` keep identities and times when importing; otherwise new ones
    are made. Raises ``NotFoundError`` for an unknown kernel and ``ArchiveError`` when a
    result names a different task than its kernel's.
    """
    if not items:
        return []
    tasks = _kernel_tasks(session, {kernel_id for kernel_id, _ in items})
    rows = []
    for i, (kernel_id, result) in enumerate(items):
        task_id, task_hash = tasks[kernel_id]
        if result.task_hash and result.task_hash != task_hash:
            raise ArchiveError(
                f"evaluation is for task {result.task_hash[:12]} but kernel {kernel_id} belongs to task {task_hash[:12]}"
            )
        row = evaluation_row(result)
        row.update(
            kernel_id=kernel_id,
            task_id=task_id,
            run_id=run_id,
            uid=uids[i] if uids else new_uid(),
            created_at=created_at[i] if created_at else utcnow(),
        )
        rows.append(row)
    # Core inserts (not the ORM's bulk path, which splits rows by which values are None).
    # Ids come back by uid: SQLite cannot batch an ordered RETURNING, an executemany is fast.
    session.execute(Evaluation.__table__.insert(), rows)
    id_of: dict[str, int] = {}
    uid_list = [row["uid"] for row in rows]
    for i in range(0, len(uid_list), _IN_CHUNK):
        chunk = uid_list[i : i + _IN_CHUNK]
        id_of.update((u, i) for u, i in session.execute(select(Evaluation.uid, Evaluation.id).where(Evaluation.uid.in_(chunk))))
    ids = [id_of[uid] for uid in uid_list]
    shapes = [
        {**shape, "evaluation_id": eval_id}
        for eval_id, (_, result) in zip(ids, items)
        for shape in shape_rows(result)
    ]
    if shapes:
        session.execute(ShapeRow.__table__.insert(), shapes)
    return ids


def start_run(session: Session, config: dict[str, Any]) -> int:
    run = Run(uid=new_uid(), config=dict(config), status="running", started_at=utcnow(), budgets_spent={})
    session.add(run)
    session.flush()
    return run.id


def finish_run(session: Session, run_id: int, status: str, budgets_spent: dict[str, Any],
               error: str | None = None) -> None:
    """Close a run with its final status ("done", "budget", "failed", "interrupted"), spend and, if it
    failed, why."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id} in the archive")
    spent = dict(budgets_spent)
    stopped = (run.budgets_spent or {}).get(TASKS_STOPPED)
    if stopped:  # what mark_task_stopped wrote while the run went on
        spent[TASKS_STOPPED] = {**stopped, **dict(spent.get(TASKS_STOPPED) or {})}
    session.execute(
        update(Run).where(Run.id == run_id).values(status=status, ended_at=utcnow(), budgets_spent=spent, error=error)
    )


def mark_task_stopped(session: Session, run_id: int, task_hash: str, reason: str) -> None:
    """Note in the run's row that its search of one task is over (a resumed run skips it)."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id} in the archive")
    spent = dict(run.budgets_spent or {})
    spent[TASKS_STOPPED] = {**dict(spent.get(TASKS_STOPPED) or {}), task_hash: reason}
    session.execute(update(Run).where(Run.id == run_id).values(budgets_spent=spent))


def record_llm_call(session: Session, call: LLMCallRecord, uid: str | None = None) -> int:
    row = LLMCall(
        uid=uid or new_uid(),
        run_id=call.run_id,
        kernel_id=call.kernel_id,
        created_at=utcnow(),
        model=call.model,
        operator=call.operator,
        tokens_in=call.tokens_in,
        tokens_out=call.tokens_out,
        latency_s=call.latency_s,
        cost_usd=call.cost_usd,
        cached=call.cached,
        error=call.error,
    )
    session.add(row)
    session.flush()
    return row.id
