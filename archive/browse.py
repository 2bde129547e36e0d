"""The read side for the browser (``autotuner archive serve``): a task page, runs.

Like ``queries``, every function takes a ``Session`` and returns rows from ``archive.rows``.
Each page is a handful of indexed queries: a task page touches only that task's
evaluations (``ix_evaluations_task_id``, the ranking index), a run page only that run's
(``ix_evaluations_run_id``), so both stay fast on a large archive.
"""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from archive import ranking
from archive.models import Evaluation, LLMCall, Run, Task
from archive.queries import current_harness, evaluation_row, iso_time, list_kernels, resolve_tasks
from archive.rows import LeaderboardPage, ModelSpend, ReasonCount, RunDetail, RunPoint, RunRow, TaskDetail, TaskEvaluation
from autotuner.errors import NotFoundError


def task_detail(session: Session, task: int | str, include_stale: bool = False, kernels: int = 200,
                recent: int = 50, reasons: int = 20) -> TaskDetail:  # fmt: skip
    """Task ``task``: its source and shapes, verdict counts, the commonest rejection reasons,
    the winner per GPU and policy with its per-shape timings, its kernels (best evaluation
    each, at most ``kernels``) and its ``recent`` newest evaluations with their reasons.
    ``task`` is an id, or a name or hash prefix (its newest version)."""
    task_id = task if isinstance(task, int) else max(resolve_tasks(session, task))
    found = session.get(Task, task_id)
    if found is None:
        raise NotFoundError(f"no task with id {task_id} in the archive")
    task = found
    hv = current_harness()
    mine = Evaluation.task_id == task_id
    current = Evaluation.harness_version == hv
    verdicts = {v: n for v, n in session.execute(select(Evaluation.verdict, func.count()).where(mine, current)
                                                 .group_by(Evaluation.verdict))}  # fmt: skip
    stale = session.scalar(select(func.count()).where(mine, Evaluation.harness_version != hv)) or 0
    reason_rows = session.execute(
        select(Evaluation.verdict, Evaluation.stage, Evaluation.reason, func.count().label("n"))
        .where(mine, current, Evaluation.verdict != "accepted")
        .group_by(Evaluation.verdict, Evaluation.stage, Evaluation.reason)
        .order_by(func.count().desc(), Evaluation.stage)
        .limit(reasons)
    )
    winners = ranking.best(session, task=str(task_id), include_stale=include_stale)
    winners = [w for w in winners if w.task_id == task_id]
    shape_evals = session.scalars(select(Evaluation).where(Evaluation.id.in_([w.evaluation_id for w in winners]))
                                  .options(selectinload(Evaluation.shapes)))  # fmt: skip
    winner_shapes = {ev.id: evaluation_row(ev).shapes for ev in shape_evals}
    newest = session.scalars(select(Evaluation).where(mine, *([] if include_stale else [current]))
                             .order_by(Evaluation.id.desc()).limit(recent))  # fmt: skip
    versions = list(session.scalars(select(Task.id).where(Task.name == task.name).order_by(Task.id)))
    return TaskDetail(
        id=task.id, name=task.name, family=task.family, dtype=task.dtype, policy=task.policy,
        content_hash=task.content_hash, path=task.path, created_at=iso_time(task.created_at), source=task.source,
        shapes=list(task.shapes or []), versions=versions, verdicts=verdicts, stale_evaluations=stale,
        reasons=[ReasonCount(r.verdict, r.stage, r.reason, r.n) for r in reason_rows], winners=winners,
        winner_shapes=winner_shapes,
        kernels=list_kernels(session, str(task_id), include_stale=include_stale, limit=kernels),
        recent=[TaskEvaluation(ev.kernel_id, evaluation_row(ev, with_shapes=False)) for ev in newest],
    )  # fmt: skip


def leaderboard_page(session: Session, gpu: str | None = None, policy: str | None = None, p: float = 1.0,
                     include_stale: bool = False) -> LeaderboardPage:  # fmt: skip
    """The leaderboard and the winners it is made of, ranked once (``ranking.best``)."""
    winners = ranking.best(session, gpu=gpu, policy=policy, include_stale=include_stale)
    board = ranking.leaderboard(session, gpu=gpu, policy=policy, p=p, include_stale=include_stale, winners=winners)
    return LeaderboardPage(board, winners)


def _run_rows(session: Session, runs: list[Run]) -> list[RunRow]:
    ids = [r.id for r in runs]
    if not ids:
        return []
    accepted = Evaluation.verdict == "accepted"
    evals = {r.run_id: r for r in session.execute(
        select(Evaluation.run_id, func.count().label("n"), func.sum(case((accepted, 1), else_=0)).label("accepted"))
        .where(Evaluation.run_id.in_(ids)).group_by(Evaluation.run_id))}  # fmt: skip
    llm = {r.run_id: r for r in session.execute(
        select(LLMCall.run_id, func.count().label("n"), func.sum(LLMCall.cost_usd).label("cost"))
        .where(LLMCall.run_id.in_(ids)).group_by(LLMCall.run_id))}  # fmt: skip
    rows = []
    for run in runs:
        e, c = evals.get(run.id), llm.get(run.id)
        search = (run.config or {}).get("search") or {}
        rows.append(RunRow(
            id=run.id, uid=run.uid, status=run.status, started_at=iso_time(run.started_at),
            ended_at=iso_time(run.ended_at), proposer=search.get("proposer") if isinstance(search, dict) else None,
            evaluations=e.n if e else 0, accepted=int(e.accepted or 0) if e else 0, llm_calls=c.n if c else 0,
            llm_cost_usd=float(c.cost or 0.0) if c else 0.0, error=run.error,
        ))  # fmt: skip
    return rows


def list_runs(session: Session, limit: int = 100) -> list[RunRow]:
    """The newest ``limit`` runs, newest first, with their evaluation and LLM counts."""
    return _run_rows(session, list(session.scalars(select(Run).order_by(Run.id.desc()).limit(limit))))


def run_detail(session: Session, run_id: int, max_points: int = 20_000) -> RunDetail:
    """Run ``run_id``: configuration, spend, verdict counts, its evaluations in order (at most
    ``max_points``, the first ones) and its LLM calls per model."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run with id {run_id} in the archive")
    hv = current_harness()
    verdicts = {v: n for v, n in session.execute(
        select(Evaluation.verdict, func.count()).where(Evaluation.run_id == run_id).group_by(Evaluation.verdict))}
    e = Evaluation
    stmt = (select(e.id, e.kernel_id, Task.name, e.verdict, e.harness_version, e.speedup_eager, e.speedup_compile,
                   e.eager_median_ms, e.compiled_median_ms)
            .join(Task, Task.id == e.task_id).where(e.run_id == run_id).order_by(e.id).limit(max_points))  # fmt: skip
    points = [RunPoint(r.id, r.kernel_id, r.name, r.verdict, r.harness_version != hv, r.speedup_eager,
                       r.speedup_compile, r.eager_median_ms, r.compiled_median_ms) for r in session.execute(stmt)]  # fmt: skip
    llm = session.execute(
        select(LLMCall.model, func.count().label("n"), func.count(LLMCall.error).label("errors"),
               func.sum(case((LLMCall.cached, 1), else_=0)).label("cached"), func.sum(LLMCall.tokens_in).label("tin"),
               func.sum(LLMCall.tokens_out).label("tout"), func.sum(LLMCall.cost_usd).label("cost"),
               func.avg(LLMCall.latency_s).label("latency"))
        .where(LLMCall.run_id == run_id).group_by(LLMCall.model).order_by(LLMCall.model)
    )  # fmt: skip
    spend = [ModelSpend(r.model, r.n, r.errors, int(r.cached or 0), int(r.tin or 0), int(r.tout or 0),
                        float(r.cost or 0.0), r.latency) for r in llm]  # fmt: skip
    return RunDetail(run=_run_rows(session, [run])[0], config=dict(run.config or {}),
                     budgets_spent=dict(run.budgets_spent or {}), verdicts=verdicts, points=points, llm=spend)

