"""The tuning run: seed from the rule proposer, tune parameters with optuna, evolve with an LLM.

Every proposal and every evaluation goes into the archive the moment it exists, under the
run's id; the run keeps nothing else that matters. A killed run resumes from the archive
alone: settings already evaluated are read back (and told to optuna, and put back into the
population) instead of being run again, and tasks whose search had stopped are skipped.

Tasks are searched one after another, each with a fair share of the run's budget
(``stopping.TaskShare``); a task's search ends when its share is spent, when it has
converged (``SearchConfig.patience`` generations without improvement) or when there is
nothing left to try; the run ends when every task's search has ended or its budget is spent.
Each ``TaskOutcome`` says why its search stopped.

What is being evaluated, and what the novelty filter has seen, are in the archive too
(``evolution.ledger``): several drivers on one archive share the work instead of repeating it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from autotuner.candidate import source_hash
from autotuner.errors import BudgetExhausted
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task
from evolution.ledger import WorkLedger
from evolution.outcome import TaskOutcome
from evolution.proposers.base import Proposal, Proposer
from evolution.stopping import TaskShare
from evolution.studies import Studies
from evolution.task_search import TaskSearch
from evolution.workers import WorkerPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchConfig:
    proposer: str = "rules"  # rules | llm | mixed
    tune_trials: int = 8  # optuna evaluations per structurally new candidate
    tune_batch: int = 4  # settings evaluated together in one child
    tune_top: int = 2  # best seed variants that get tuned
    patience: int = 5  # LLM generations in a row without a 1% improvement before a task has converged
    generations: int | None = None  # optional cap on LLM generations per task (None: budget and patience decide)
    islands: int = 2
    migrate_every: int = 2
    seed: int = 0
    max_variants: int = 8  # structural variants taken from the rule proposer per task


@dataclass(frozen=True)
class Callbacks:
    """How the loop reports progress (the CLI draws a tqdm bar); all optional."""

    on_result: Callable[[TaskOutcome, EvalResult], None] = lambda outcome, result: None
    on_note: Callable[[str], None] = lambda text: None


class TuneRun:
    """A whole run over several tasks, recorded in the archive under one run id."""

    def __init__(self, archive: Any, run_id: int, search: SearchConfig, proposers: dict[str, Proposer],
                 pool: WorkerPool, budget: Any, workdir: Path, callbacks: Callbacks | None = None,
                 ledger: WorkLedger | None = None, studies: Studies | None = None) -> None:
        self.archive = archive
        self.run_id = run_id
        self.search = search
        self.proposers = proposers
        self.pool = pool
        self.budget = budget
        self.workdir = workdir
        self.callbacks = callbacks or Callbacks()
        self.ledger = ledger or WorkLedger(archive, run_id, pool.scope)  # claims: work shared with other drivers
        self.studies = studies or Studies(seed=search.seed)  # optuna's studies (in memory unless given)
        self._write_lock = threading.Lock()
        self._budget_lock = threading.Lock()
        self.history: list[Any] = []
        workdir.mkdir(parents=True, exist_ok=True)

    def reserve(self, wanted: int, share: TaskShare | None = None) -> int:
        """Take up to ``wanted`` candidates from the budget and the task's share (atomically
        across GPU workers); ``BudgetExhausted`` or ``ShareSpent`` when none is left."""
        with self._budget_lock:
            self.budget.check()
            if share is not None:
                share.check()
            cap = self.budget.max_candidates
            allowed = wanted if cap is None else max(0, min(wanted, cap - self.budget.spent()["candidates"]))
            if allowed == 0:
                raise BudgetExhausted(f"budget exhausted: max_candidates reached: {cap} candidates evaluated")
            left = share.candidates_left() if share is not None else None
            if left is not None:
                allowed = min(allowed, left)
                if allowed == 0:
                    share.check()
            self.budget.count_candidate(allowed)
            return allowed

    def candidate_file(self, source: str) -> Path:
        path = self.workdir / f"candidate_{source_hash(source)[:16]}.py"
        if not path.exists():
            path.write_text(source)
        return path

    def record(self, task: Task, proposal: Proposal, params: dict[str, Any], result: EvalResult,
               claim: Any = None) -> int:
        from archive import KernelSpec

        call = proposal.llm_call
        spec = KernelSpec(source=proposal.source, params=dict(params), operator=proposal.operator,
                          proposer=proposal.proposer, model=call.model if call else None,
                          prompt=call.prompt if call else None, parents=tuple(proposal.parents), run_id=self.run_id)
        with self._write_lock:
            return self.archive.record(task, spec, result, run_id=self.run_id, claim=claim).kernel_id

    def record_llm_call(self, call: Any, batch_operator: str | None = None) -> None:
        from archive import LLMCallRecord

        with self._write_lock:
            self.archive.record_llm_call(LLMCallRecord(
                model=call.model, tokens_in=call.tokens_in, tokens_out=call.tokens_out, latency_s=call.latency_s,
                cost_usd=call.cost_usd, error=call.error, operator=batch_operator, cached=call.cached,
                run_id=self.run_id))

    def examples(self, task: Task) -> list[str]:
        """Sources of the best verified kernels of related tasks (same family), for prompts."""
        with self._write_lock:
            return self.archive.related_examples(task.family, task.content_hash)

    def run(self, tasks: list[Task]) -> list[TaskOutcome]:
        """Search each task in turn with its fair share; returns one outcome per task, each
        saying why its search stopped (a task a resumed run had finished is not searched again)."""
        stopped_before = self.archive.run_tasks_stopped(self.run_id)
        for task_hash in _unresolved_errors(self.history):  # a finished task with a harness error searches again
            stopped_before.pop(task_hash, None)
        waiting = [t for t in tasks if t.content_hash not in stopped_before]
        outcomes = []
        spent: BudgetExhausted | None = None
        self.ledger.start()
        try:
            for task in tasks:
                search = TaskSearch(self, task)
                search.restore(self.history)
                search.restore(self.ledger.finished(task))  # other drivers' work in this scope
                if task.content_hash in stopped_before:
                    search.outcome.stop_reason = stopped_before[task.content_hash]
                elif spent is not None:
                    why = str(spent).removeprefix("budget exhausted: ")
                    search.outcome.stop_reason = f"not searched: the run's budget was spent before its turn ({why})"
                elif (closed := self.budget.start_closed()) is not None:
                    search.outcome.stop_reason = f"not searched: no task starts after the run's start window ({closed})"
                else:
                    search.share = TaskShare(self.budget, len(waiting))
                    waiting.remove(task)
                    try:
                        search.run_all()
                        search.restore(self.ledger.finished(task))  # what other drivers finished meanwhile
                    except BudgetExhausted as exc:
                        spent = exc
                        self.callbacks.on_note(str(exc))
                    else:
                        self.callbacks.on_note(f"{task.name}: stopped, {search.outcome.stop_reason}")
                        with self._write_lock:
                            self.archive.mark_task_stopped(self.run_id, task.content_hash,
                                                           search.outcome.stop_reason)
                outcomes.append(search.outcome)
        finally:
            self.ledger.close()
        return outcomes


__all__ = ["Callbacks", "SearchConfig", "TaskOutcome", "TaskSearch", "TuneRun"]


def _unresolved_errors(history: list[Any]) -> set[str]:
    """Tasks with a setting whose only evaluations are harness errors (``Verdict.ERROR``)."""
    from autotuner.evaluator.verdict import Verdict
    from evolution.tuning import params_key

    failed, settled = set(), set()
    for item in history:
        key = (item.task_hash, item.source_hash, params_key(item.params))
        (failed if item.result.verdict is Verdict.ERROR else settled).add(key)
    return {key[0] for key in failed - settled}
