"""Assemble a tuning run from a configuration: proposers, budget, evaluation pool, archive run.

The pool is this machine's GPUs (a thread each) or, with ``[cluster] address`` (``--cluster``),
a Ray actor per GPU of a cluster; both run the same ``EvalWorker``. A cluster run keeps its
archive, and so its claims and optuna studies, on PostgreSQL.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotuner.app.run_config import RunConfig
from autotuner.errors import ClusterError
from autotuner.runtime.compile import cache_root
from autotuner.tasks import Task
from evolution.evalpool import EvalPool, real_evaluator
from evolution.ledger import WorkLedger
from evolution.loop import Callbacks, TaskOutcome, TuneRun
from evolution.studies import Studies
from evolution.workers import EvalWorker, Evaluator, WorkerPool

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_id: int
    status: str  # done (every task's search stopped on its own) | budget (spent, or its start window closed first)
    outcomes: list[TaskOutcome] = field(default_factory=list)
    report: Path | None = None
    plot: Path | None = None
    spent: dict[str, Any] = field(default_factory=dict)
    stop_reason: str = ""  # why the run ended, in words (each task's own reason is in its outcome)


def run_stop_reason(status: str, budget: Any, outcomes: list[TaskOutcome]) -> str:
    """Why a run ended: its budget, its start window (tasks left unsearched), or every task's
    search having stopped on its own."""
    if status == "budget":
        spent = budget.exhausted()
        if spent is None:
            left = sum(o.stop_kind == "not searched" for o in outcomes)
            return f"the run's start window closed with {left} tasks not searched: {budget.start_closed()}"
        return f"the run's budget is spent: {spent}"
    kinds = Counter(o.stop_kind for o in outcomes)
    return "every task's search stopped: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))


def make_budget(config: RunConfig) -> Any:
    from evolution.budget import Budget

    b = config.budget
    return Budget(max_tokens=b.max_tokens, max_cost_usd=b.max_cost_usd, max_candidates=b.max_candidates,
                  max_wall_s=b.max_minutes * 60 if b.max_minutes is not None else None,
                  start_within_s=b.start_within_minutes * 60 if b.start_within_minutes is not None else None)


def make_proposers(config: RunConfig, budget: Any) -> dict[str, Any]:
    proposers: dict[str, Any] = {}
    if config.search.proposer in ("rules", "mixed"):
        from evolution.proposers.rules import RulesProposer

        proposers["rules"] = RulesProposer()
    if config.search.proposer in ("llm", "mixed"):
        from evolution.llm import llm_config_from, open_cache
        from evolution.proposers.llm import LLMProposer

        llm_config = llm_config_from(config.llm, os.environ)
        proposers["llm"] = LLMProposer(llm_config, budget, open_cache(llm_config), seed=config.search.seed)
    return proposers


SQLITE_CLUSTER = ("a cluster run keeps its archive on PostgreSQL, so that drivers on other machines, and a "
                  "restarted driver, share what was evaluated and optuna's studies; {url} is a SQLite file, "
                  "which this machine alone can be trusted to write. Give --db postgresql://USER@HOST:5432/DB "
                  "(or db_url / $AUTOTUNER_DB_URL), or drop --cluster to use this machine's GPUs")


def check_cluster_archive(config: RunConfig, archive: Any = None) -> None:
    """Refuse a cluster run on a SQLite archive (whether every node shares its file is unknowable):
    the open ``archive``, or before one is opened, the one ``config`` names."""
    if not config.cluster.enabled:
        return
    if archive is not None:
        shared, where = archive.backend == "postgresql", archive.url
    else:
        from archive import redact, resolve_url

        resolved = resolve_url(config.db_url)
        shared, where = resolved.startswith("postgresql"), redact(resolved)
    if not shared:
        raise ClusterError(SQLITE_CLUSTER.format(url=where))


def make_pool(config: RunConfig, evaluator: Evaluator) -> WorkerPool:
    """This machine's GPUs, or one Ray actor per GPU of the cluster: the same worker either way."""
    if not config.cluster.enabled:
        return EvalPool(evaluator, config.eval, list(config.gpus))
    from evolution.cluster import RayPool

    return RayPool(EvalWorker(evaluator, config.eval), config.cluster)


def run_tuning(archive: Any, config: RunConfig, tasks: list[Task], *, run_id: int | None = None,
               history: list[Any] | None = None, simulate: bool = False, simulate_delay: float = 0.0,
               callbacks: Callbacks | None = None) -> RunOutcome:
    """Run (or resume, with ``run_id`` and its ``history``) a tuning run; returns what it found."""
    check_cluster_archive(config, archive)  # before a run row exists: nothing is left "running"
    resumed = run_id is not None
    if run_id is None:
        run_id = archive.start_run({"config": config.to_json(), "tasks": [str(t.path) for t in tasks],
                                    "evaluator": "simulate" if simulate else "gpu"})
    budget = make_budget(config)
    try:
        outcomes, status, spent = _search(archive, config, tasks, run_id, history, simulate, simulate_delay,
                                          callbacks, budget, resumed)
    except KeyboardInterrupt:
        _close_run(archive, run_id, "interrupted", budget.spent(), None)
        raise
    except BaseException as exc:
        _close_run(archive, run_id, "failed", budget.spent(), failure_reason(exc))
        raise
    reason = run_stop_reason(status, budget, outcomes)
    archive.finish_run(run_id, status, {**spent, "stop_reason": reason})
    from autotuner.app.report import write_report

    out_dir = Path(config.report_dir) if config.report_dir else Path("autotuner-runs") / f"run-{run_id}"
    report, plot = write_report(outcomes, out_dir, run_id, config.to_json(), archive.url, simulated=simulate,
                                stop_reason=reason)
    return RunOutcome(run_id, status, outcomes, report, plot, spent, reason)


def _search(archive: Any, config: RunConfig, tasks: list[Task], run_id: int, history: list[Any] | None,
            simulate: bool, simulate_delay: float, callbacks: Callbacks | None,
            budget: Any, resumed: bool = False) -> tuple[list[TaskOutcome], str, dict[str, Any]]:
    """The run's work between its start and finish rows: proposers, evaluation pool, the loop."""
    if history:
        restore_spent(archive, run_id, history, budget)
    proposers = make_proposers(config, budget)
    pool = studies = None
    try:
        if simulate:
            from evolution.simulate import simulated_evaluator

            evaluator: Evaluator = simulated_evaluator(simulate_delay)
        else:
            evaluator = real_evaluator
        pool = make_pool(config, evaluator)
        ledger = WorkLedger(archive, run_id, pool.scope, lease_s=config.cluster.lease_s)
        if resumed:
            freed = ledger.release_run(run_id)  # what the killed driver had in flight: free it now
            if freed:
                log.info("run %s: %d settings its previous driver left in flight are evaluated again", run_id, freed)
        studies = Studies(archive.optuna_storage_url(), seed=config.search.seed)
        run = TuneRun(archive, run_id, config.search, proposers, pool, budget,
                      workdir=cache_root() / "runs" / f"run-{run_id}", callbacks=callbacks, ledger=ledger,
                      studies=studies)
        run.history = list(history or [])
        outcomes = run.run(tasks)
    finally:
        if studies is not None:
            studies.close()
        if pool is not None:
            pool.close()
        for proposer in proposers.values():
            close = getattr(proposer, "close", None)
            if close:
                close()
    late = budget.start_closed() is not None and any(o.stop_kind == "not searched" for o in outcomes)
    status = "budget" if budget.exhausted() or late else "done"
    spent = {**budget.spent(), "settings_per_gpu": {str(k): v for k, v in pool.settings_per_gpu.items()}}
    return outcomes, status, spent


def restore_spent(archive: Any, run_id: int, history: list[Any], budget: Any) -> None:
    """A resumed run's caps cover the whole run: count what it spent before it was killed
    (its evaluations and LLM calls, from the archive); wall time counts this session only."""
    llm = archive.run(run_id).llm
    budget.restore(candidates=len(history), tokens_in=sum(m.tokens_in for m in llm),
                   tokens_out=sum(m.tokens_out for m in llm), cost_usd=sum(m.cost_usd for m in llm),
                   calls=sum(m.calls for m in llm))


def failure_reason(exc: BaseException) -> str:
    """What is recorded as the reason a run failed: the error's own message, one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _close_run(archive: Any, run_id: int, status: str, spent: dict[str, Any], error: str | None) -> None:
    """Mark the run stopped; an archive that is itself the failure is logged, not allowed to hide it."""
    try:
        archive.finish_run(run_id, status, spent, error)
    except Exception:  # noqa: BLE001 - the original error is re-raised by the caller
        log.exception("could not mark run %s as %s in the archive", run_id, status)
