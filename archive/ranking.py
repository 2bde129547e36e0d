"""Winners: best kernel per task and GPU, the cross-task leaderboard, and what is stale.

A winner is an accepted evaluation with a timed median, made by the current harness, of a
kernel that the current harness has never rejected on that GPU (a kernel that failed
verification once is not presented as a winner because it passed another time). Ranking
is by the candidate's median time at the timed shape; ties go to the older evaluation.
Policies ("strict", "hybrid") are ranked apart, as the verification contract requires.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from archive.models import Evaluation, Kernel, Task
from archive.queries import iso_time, current_harness, gpu_matches, resolve_tasks
from archive.rows import BestRow, LeaderRow, StaleRow
from autotuner.speedup import geomean


def _winner_conditions(e: Any, include_stale: bool) -> list[Any]:
    """Conditions on evaluation alias ``e`` for being a winner (see the module doc)."""
    hv = current_harness()
    rejected = aliased(Evaluation)
    ever_rejected = (
        select(rejected.id)
        .where(rejected.kernel_id == e.kernel_id, rejected.gpu_name == e.gpu_name)
        .where(rejected.harness_version == hv, rejected.verdict == "rejected")
        .exists()
    )
    conds = [e.verdict == "accepted", e.candidate_median_ms.is_not(None), ~ever_rejected]
    if not include_stale:
        conds.append(e.harness_version == hv)
    return conds


def _scope(session: Session, e: Any, task: str | None, gpu: str | None, policy: str | None) -> list[Any]:
    conds: list[Any] = []
    if task is not None:
        conds.append(e.task_id.in_(resolve_tasks(session, task)))
    if gpu:
        conds.append(gpu_matches(gpu, e.gpu_name))
    if policy:
        conds.append(e.policy == policy)
    return conds


def _first_winners(session: Session, scope: list[Any], include_stale: bool) -> list[int]:
    """Id of the fastest winner of each (task, GPU, policy) group: one ordered index probe
    per group (``ix_evaluations_ranking``) instead of ranking every accepted row."""
    group_conds = [*scope, Evaluation.verdict == "accepted"]
    if not include_stale:
        group_conds.append(Evaluation.harness_version == current_harness())
    groups = select(Evaluation.task_id, Evaluation.gpu_name, Evaluation.policy).where(*group_conds).distinct().subquery("g")
    e = aliased(Evaluation, name="e")
    first = (
        select(e.id)
        .where(e.task_id == groups.c.task_id, e.gpu_name == groups.c.gpu_name, e.policy == groups.c.policy)
        .where(*_winner_conditions(e, include_stale))
        .order_by(e.candidate_median_ms, e.id)
        .limit(1)
        .correlate(groups)
        .scalar_subquery()
    )
    return [i for i in session.scalars(select(first).select_from(groups)) if i is not None]


def _ranked_winners(session: Session, scope: list[Any], include_stale: bool, top: int) -> list[int]:
    """Ids of the ``top`` fastest winners of each group (window function; for top > 1)."""
    rank = func.row_number().over(
        partition_by=(Evaluation.task_id, Evaluation.gpu_name, Evaluation.policy),
        order_by=(Evaluation.candidate_median_ms, Evaluation.id),
    )
    ranked = (
        select(Evaluation.id, rank.label("rank")).where(*scope, *_winner_conditions(Evaluation, include_stale)).subquery()
    )
    return list(session.scalars(select(ranked.c.id).where(ranked.c.rank <= top)))


def best(
    session: Session,
    task: str | None = None,
    gpu: str | None = None,
    policy: str | None = None,
    include_stale: bool = False,
    top: int = 1,
) -> list[BestRow]:
    """The ``top`` fastest winners per (task, GPU, policy), ordered by task name, GPU, time."""
    scope = _scope(session, Evaluation, task, gpu, policy)
    ids = _first_winners(session, scope, include_stale) if top == 1 else _ranked_winners(session, scope, include_stale, top)
    hv = current_harness()
    rows: list[BestRow] = []
    e = Evaluation
    columns = (e.id, e.task_id, e.kernel_id, e.gpu_name, e.policy, e.dtype, e.candidate_median_ms, e.eager_median_ms,
               e.compiled_median_ms, e.speedup_eager, e.speedup_compile, e.roofline_fraction, e.harness_version)  # fmt: skip
    for i in range(0, len(ids), 500):
        stmt = select(*columns, Task.name).join(Task, Task.id == e.task_id).where(e.id.in_(ids[i : i + 500]))
        for r in session.execute(stmt):
            rows.append(BestRow(
                task_id=r.task_id, task=r.name, gpu=r.gpu_name, policy=r.policy, dtype=r.dtype,
                kernel_id=r.kernel_id, evaluation_id=r.id, candidate_ms=r.candidate_median_ms,
                eager_ms=r.eager_median_ms, compiled_ms=r.compiled_median_ms, speedup_eager=r.speedup_eager,
                speedup_compile=r.speedup_compile, roofline_fraction=r.roofline_fraction,
                harness=r.harness_version, stale=r.harness_version != hv,
            ))  # fmt: skip
    rows.sort(key=lambda r: (r.task, r.task_id, r.gpu, r.policy, r.candidate_ms, r.evaluation_id))
    return rows


def leaderboard(
    session: Session,
    gpu: str | None = None,
    policy: str | None = None,
    p: float = 1.0,
    include_stale: bool = False,
    winners: Sequence[BestRow] | None = None,
) -> list[LeaderRow]:
    """Per GPU and policy: tasks attempted, solved, fast_p against eager and torch.compile,
    and the geometric mean speedup of each task's winner.

    A task counts as attempted on a GPU when it has any evaluation there (of any verdict);
    fast_p is the share of attempted tasks whose winner beats the baseline by more than p.
    ``winners``: ``best`` of the same filters, when the caller has it already (not ranked again).
    """
    scope: list[Any] = [] if include_stale else [Evaluation.harness_version == current_harness()]
    if gpu:
        scope.append(gpu_matches(gpu))
    if policy:
        scope.append(Evaluation.policy == policy)
    attempted = session.execute(
        select(Evaluation.gpu_name, Evaluation.policy, func.count(Evaluation.task_id.distinct()))
        .where(*scope)
        .group_by(Evaluation.gpu_name, Evaluation.policy)
    ).all()
    by_group: dict[tuple[str, str], list[BestRow]] = defaultdict(list)
    rows_in = winners if winners is not None else best(session, gpu=gpu, policy=policy, include_stale=include_stale)
    for row in rows_in:
        by_group[(row.gpu, row.policy)].append(row)
    board = []
    for gpu_name, pol, n_tasks in sorted(attempted, key=lambda r: (r[0], r[1])):
        rows = by_group.get((gpu_name, pol), [])
        eager = [r.speedup_eager for r in rows if r.speedup_eager is not None]
        compiled = [r.speedup_compile for r in rows if r.speedup_compile is not None]
        board.append(
            LeaderRow(
                gpu=gpu_name, policy=pol, tasks=n_tasks, solved=len(rows), p=p,
                fast_p_eager=sum(s > p for s in eager) / n_tasks if n_tasks else 0.0,
                fast_p_compile=sum(s > p for s in compiled) / n_tasks if n_tasks else 0.0,
                geomean_speedup_eager=geomean(eager), geomean_speedup_compile=geomean(compiled),
            )
        )  # fmt: skip
    return board


def stale_kernels(session: Session, gpu: str | None = None, limit: int | None = None) -> list[StaleRow]:
    """Kernels accepted by an older harness on a GPU with no evaluation by the current one
    there: the list to re-verify, most promising (highest old speedup) first."""
    hv = current_harness()
    fresh = aliased(Evaluation)
    reverified = (
        select(fresh.id)
        .where(fresh.kernel_id == Evaluation.kernel_id, fresh.gpu_name == Evaluation.gpu_name)
        .where(fresh.harness_version == hv)
        .exists()
    )
    stmt = (
        select(
            Evaluation.kernel_id,
            Task.name,
            Evaluation.gpu_name,
            func.max(Evaluation.harness_version).label("harness"),
            func.count().label("n"),
            func.max(Evaluation.created_at).label("last"),
            func.max(Evaluation.speedup_eager).label("speedup"),
        )
        .join(Kernel, Kernel.id == Evaluation.kernel_id)
        .join(Task, Task.id == Kernel.task_id)
        .where(Evaluation.harness_version != hv, Evaluation.verdict == "accepted", ~reverified)
        .group_by(Evaluation.kernel_id, Task.name, Evaluation.gpu_name)
        .order_by(func.max(Evaluation.speedup_eager).desc().nulls_last(), Evaluation.kernel_id)
    )
    if gpu:
        stmt = stmt.where(gpu_matches(gpu))
    if limit:
        stmt = stmt.limit(limit)
    return [
        StaleRow(r.kernel_id, r.name, r.gpu_name, r.harness, r.n, iso_time(r.last), r.speedup)
        for r in session.execute(stmt)
    ]
