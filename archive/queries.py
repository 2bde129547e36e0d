"""The read side for browsing: tasks, kernels, one kernel in full, lineage, diffs, stats.

Every function takes a ``Session`` and returns rows from ``archive.rows``. Unless asked for
``include_stale``, evaluations made by an older harness are left out, so a listing never
presents a stale result as current; where they are shown, each row says ``stale``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, selectinload

import autotuner
from archive.models import Evaluation, Kernel, KernelParent, LLMCall, Run, Task
from archive.rows import EvaluationRow, KernelDetail, KernelDiff, KernelRow, LineageRow, TaskRow
from autotuner.errors import NotFoundError


def current_harness() -> str:
    return autotuner.HARNESS_VERSION


def iso_time(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def resolve_tasks(session: Session, ref: str) -> list[int]:
    """Task ids for ``ref``: an id, a name (every version of it) or a hash prefix (>= 6 chars)."""
    conditions = [Task.name == ref]
    if ref.isdigit():
        conditions.append(Task.id == int(ref))
    if len(ref) >= 6 and all(c in "0123456789abcdef" for c in ref.lower()):
        conditions.append(Task.content_hash.startswith(ref.lower()))
    ids = list(session.scalars(select(Task.id).where(or_(*conditions)).order_by(Task.id)))
    if not ids:
        raise NotFoundError(f"no task {ref!r} in the archive (give an id, a name or a hash prefix)")
    return ids


def gpu_matches(gpu: str, column: Any = Evaluation.gpu_name) -> Any:
    """Case-insensitive substring match, so ``--gpu h100`` finds "NVIDIA H100 80GB HBM3"."""
    return func.lower(column).contains(gpu.lower(), autoescape=True)


def list_tasks(session: Session, include_stale: bool = False) -> list[TaskRow]:
    hv = current_harness()
    kernels = dict(session.execute(select(Kernel.task_id, func.count()).group_by(Kernel.task_id)).all())
    scope = [] if include_stale else [Evaluation.harness_version == hv]
    accepted = Evaluation.verdict == "accepted"
    per_task = {
        row.task_id: row
        for row in session.execute(
            select(
                Evaluation.task_id,
                func.count().label("n"),
                func.sum(case((accepted, 1), else_=0)).label("accepted"),
                func.max(case((accepted, Evaluation.speedup_eager))).label("best"),
                func.sum(case((Evaluation.harness_version != hv, 1), else_=0)).label("stale"),
            )
            .where(*scope)
            .group_by(Evaluation.task_id)
        )
    }
    stale = dict(
        session.execute(
            select(Evaluation.task_id, func.count()).where(Evaluation.harness_version != hv).group_by(Evaluation.task_id)
        ).all()
    )
    rows = []
    for task in session.scalars(select(Task).order_by(Task.name, Task.id)):
        agg = per_task.get(task.id)
        rows.append(
            TaskRow(
                id=task.id,
                name=task.name,
                family=task.family,
                dtype=task.dtype,
                policy=task.policy,
                hash=task.content_hash[:12],
                kernels=kernels.get(task.id, 0),
                evaluations=agg.n if agg else 0,
                accepted=int(agg.accepted or 0) if agg else 0,
                best_speedup_eager=agg.best if agg else None,
                stale_evaluations=stale.get(task.id, 0),
            )
        )
    return rows


def list_kernels(
    session: Session,
    task: str,
    gpu: str | None = None,
    dtype: str | None = None,
    verdict: str | None = None,
    min_speedup: float | None = None,
    proposer: str | None = None,
    include_stale: bool = False,
    limit: int | None = None,
) -> list[KernelRow]:
    """Kernels of a task, each with its best evaluation among those the filters keep.

    "Best" is accepted before rejected, then the fastest timed median, then the newest.
    ``min_speedup`` is against PyTorch eager. Kernels with no evaluation left by the filters
    are listed (with empty evaluation columns) only when no evaluation filter was given.
    """
    task_ids = resolve_tasks(session, task)
    hv = current_harness()
    conds: list[Any] = [Evaluation.task_id.in_(task_ids)]
    if not include_stale:
        conds.append(Evaluation.harness_version == hv)
    if gpu:
        conds.append(gpu_matches(gpu))
    if dtype:
        conds.append(Evaluation.dtype == dtype)
    if verdict:
        conds.append(Evaluation.verdict == verdict)
    if min_speedup is not None:
        conds.append(Evaluation.speedup_eager >= min_speedup)
    order = (
        case((Evaluation.verdict == "accepted", 0), else_=1),
        Evaluation.candidate_median_ms.asc().nulls_last(),
        Evaluation.id.desc(),
    )
    ranked = (
        select(
            Evaluation,
            func.row_number().over(partition_by=Evaluation.kernel_id, order_by=order).label("rank"),
            func.count().over(partition_by=Evaluation.kernel_id).label("n"),
        )
        .where(*conds)
        .subquery()
    )
    ev_filtered = any(x is not None for x in (gpu, dtype, verdict, min_speedup))
    join_on = (ranked.c.kernel_id == Kernel.id) & (ranked.c.rank == 1)
    stmt = (
        select(Kernel, Task.name, ranked)
        .join(Task, Task.id == Kernel.task_id)
        .join(ranked, join_on, isouter=not ev_filtered)
        .where(Kernel.task_id.in_(task_ids))
    )
    if proposer:
        stmt = stmt.where(Kernel.proposer == proposer)
    stmt = stmt.order_by(case((ranked.c.verdict == "accepted", 0), else_=1), ranked.c.candidate_median_ms.asc().nulls_last(), Kernel.id)
    if limit:
        stmt = stmt.limit(limit)
    return [_kernel_row(row) for row in session.execute(stmt)]


def _kernel_row(row: Any) -> KernelRow:
    kernel: Kernel = row[0]
    m = row._mapping
    has_eval = m["id"] is not None
    return KernelRow(
        kernel_id=kernel.id,
        task=row[1],
        proposer=kernel.proposer,
        operator=kernel.operator,
        params=kernel.params,
        evaluations=m["n"] or 0,
        evaluation_id=m["id"],
        verdict=m["verdict"],
        stage=m["stage"],
        gpu=m["gpu_name"],
        dtype=m["dtype"],
        candidate_ms=m["candidate_median_ms"],
        speedup_eager=m["speedup_eager"],
        speedup_compile=m["speedup_compile"],
        harness=m["harness_version"],
        stale=has_eval and m["harness_version"] != current_harness(),
    )


def evaluation_row(ev: Evaluation, with_shapes: bool = True) -> EvaluationRow:
    shapes = []
    if with_shapes:
        for s in ev.shapes:
            shapes.append(
                {
                    "shape": s.shape, "hidden": s.hidden, "trials": s.trials, "passed": s.passed,
                    "max_abs_err": s.max_abs_err, "max_rel_l2": s.max_rel_l2,
                    "candidate": s.candidate, "eager": s.eager, "compiled": s.compiled,
                    "bytes_moved": s.bytes_moved, "flops": s.flops, "roofline_ms": s.roofline_ms,
                }
            )  # fmt: skip
    return EvaluationRow(
        id=ev.id, uid=ev.uid, created_at=iso_time(ev.created_at), verdict=ev.verdict, stage=ev.stage,
        reason=ev.reason, policy=ev.policy, dtype=ev.dtype, gpu=ev.gpu_name, capability=ev.capability,
        driver=ev.driver, torch=ev.torch_version, cuda=ev.torch_cuda, cupy=ev.cupy_version,
        harness=ev.harness_version, stale=ev.harness_version != current_harness(),
        max_abs_err=ev.max_abs_err, candidate_ms=ev.candidate_median_ms, eager_ms=ev.eager_median_ms,
        compiled_ms=ev.compiled_median_ms, speedup_eager=ev.speedup_eager,
        speedup_compile=ev.speedup_compile, roofline_fraction=ev.roofline_fraction, run_id=ev.run_id,
        shapes=shapes,
    )  # fmt: skip


def get_kernel(session: Session, kernel_id: int) -> Kernel:
    kernel = session.get(Kernel, kernel_id)
    if kernel is None:
        raise NotFoundError(f"no kernel with id {kernel_id} in the archive")
    return kernel


def task_source(session: Session, task_hash: str) -> str:
    """A task file's text as stored (what its kernels were verified against)."""
    source = session.scalar(select(Task.source).where(Task.content_hash == task_hash))
    if source is None:
        raise NotFoundError(f"no task with hash {task_hash[:12]} in the archive")
    return source


def _parents(session: Session, kernel_ids: Sequence[int]) -> dict[int, list[int]]:
    edges: dict[int, list[int]] = {k: [] for k in kernel_ids}
    stmt = select(KernelParent.kernel_id, KernelParent.parent_id).where(KernelParent.kernel_id.in_(kernel_ids))
    for kid, pid in session.execute(stmt.order_by(KernelParent.position)):
        edges[kid].append(pid)
    return edges


def _children(session: Session, kernel_ids: Sequence[int]) -> dict[int, list[int]]:
    edges: dict[int, list[int]] = {k: [] for k in kernel_ids}
    stmt = select(KernelParent.parent_id, KernelParent.kernel_id).where(KernelParent.parent_id.in_(kernel_ids))
    for pid, kid in session.execute(stmt.order_by(KernelParent.kernel_id)):
        edges[pid].append(kid)
    return edges


def show_kernel(session: Session, kernel_id: int) -> KernelDetail:
    """One kernel in full: source, parameters, lineage edges and every evaluation (stale marked)."""
    kernel = get_kernel(session, kernel_id)
    evals = session.scalars(
        select(Evaluation).where(Evaluation.kernel_id == kernel_id).options(selectinload(Evaluation.shapes)).order_by(Evaluation.id)
    )
    return KernelDetail(
        id=kernel.id, task=kernel.task.name, task_hash=kernel.task.content_hash, language=kernel.language,
        proposer=kernel.proposer, operator=kernel.operator, model=kernel.model, prompt=kernel.prompt,
        params=kernel.params, source_hash=kernel.source_hash, parents=_parents(session, [kernel_id])[kernel_id],
        children=_children(session, [kernel_id])[kernel_id], run_id=kernel.run_id,
        created_at=iso_time(kernel.created_at), source=kernel.source,
        evaluations=[evaluation_row(ev) for ev in evals],
    )  # fmt: skip


def best_speedups(session: Session, kernel_ids: Sequence[int]) -> dict[int, float | None]:
    """Each kernel's best current accepted speedup against eager (any GPU)."""
    stmt = (
        select(Evaluation.kernel_id, func.max(Evaluation.speedup_eager))
        .where(Evaluation.kernel_id.in_(kernel_ids), Evaluation.verdict == "accepted")
        .where(Evaluation.harness_version == current_harness())
        .group_by(Evaluation.kernel_id)
    )
    found = dict(session.execute(stmt).all())
    return {k: found.get(k) for k in kernel_ids}


def lineage(session: Session, kernel_id: int, max_depth: int = 50) -> list[LineageRow]:
    """The kernel, its ancestors (negative generations) and descendants (positive)."""
    get_kernel(session, kernel_id)
    generation = {kernel_id: 0}
    for step, follow in ((-1, _parents), (1, _children)):
        frontier = [kernel_id]
        for depth in range(1, max_depth + 1):
            nxt = [k for ids in follow(session, frontier).values() for k in ids if k not in generation]
            if not nxt:
                break
            for k in nxt:
                generation[k] = step * depth
            frontier = list(dict.fromkeys(nxt))
    ids = sorted(generation, key=lambda k: (generation[k], k))
    kernels = {k.id: k for k in session.scalars(select(Kernel).where(Kernel.id.in_(ids)))}
    parents, speedups = _parents(session, ids), best_speedups(session, ids)
    return [
        LineageRow(
            kernel_id=k, generation=generation[k], parents=parents[k], operator=kernels[k].operator,
            proposer=kernels[k].proposer, model=kernels[k].model, best_speedup_eager=speedups[k],
        )
        for k in ids
    ]  # fmt: skip


def diff_kernels(session: Session, a: int, b: int) -> KernelDiff:
    ka, kb = get_kernel(session, a), get_kernel(session, b)
    names = sorted(set(ka.params) | set(kb.params))
    changed = {n: [ka.params.get(n), kb.params.get(n)] for n in names if ka.params.get(n) != kb.params.get(n)}
    lines = difflib.unified_diff(
        ka.source.splitlines(), kb.source.splitlines(), f"kernel {a}", f"kernel {b}", lineterm=""
    )
    speedups = best_speedups(session, [a, b])
    return KernelDiff(a, b, ka.task_id == kb.task_id, changed, list(lines), [speedups[a], speedups[b]])


def stats(session: Session) -> dict[str, Any]:
    """Counts for a quick look: rows per table, verdicts, rejection stages, GPUs, LLM spend."""
    hv = current_harness()

    def count(model: type) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    def grouped(column: Any, *where: Any) -> dict[str, int]:
        stmt = select(column, func.count()).where(*where).group_by(column).order_by(func.count().desc())
        return {str(k): v for k, v in session.execute(stmt)}

    llm = session.execute(
        select(func.count(), func.sum(LLMCall.tokens_in), func.sum(LLMCall.tokens_out), func.sum(LLMCall.cost_usd))
    ).one()
    return {
        "harness_version": hv,
        "tasks": count(Task),
        "kernels": count(Kernel),
        "evaluations": count(Evaluation),
        "stale_evaluations": session.scalar(select(func.count()).where(Evaluation.harness_version != hv)) or 0,
        "runs": count(Run),
        "verdicts": grouped(Evaluation.verdict, Evaluation.harness_version == hv),
        "rejected_at": grouped(Evaluation.stage, Evaluation.harness_version == hv, Evaluation.verdict == "rejected"),
        "gpus": grouped(Evaluation.gpu_name, Evaluation.harness_version == hv),
        "proposers": grouped(Kernel.proposer),
        "llm_calls": llm[0] or 0,
        "llm_tokens_in": int(llm[1] or 0),
        "llm_tokens_out": int(llm[2] or 0),
        "llm_cost_usd": float(llm[3] or 0.0),
    }
