"""The tuning run: seed from the rule proposer, tune parameters with optuna, evolve with an LLM.

Every proposal and every evaluation goes into the archive the moment it exists, under the
run's id; the run keeps nothing else that matters. A killed run resumes from the archive
alone: settings already evaluated are read back (and told to optuna, and put back into the
population) instead of being run again. What is being evaluated, and what the novelty filter
has seen, are in the archive too (``evolution.ledger``): several drivers on one archive share
the work instead of repeating it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autotuner.candidate import source_hash
from autotuner.errors import BudgetExhausted
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task
from evolution.ledger import WorkLedger
from evolution.population import Member, Population
from evolution.proposers.base import Parent, Proposal, ProposalRequest, Proposer
from evolution.studies import Studies
from evolution.tuning import params_key, tune
from evolution.workers import WorkerPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchConfig:
    proposer: str = "rules"  # rules | llm | mixed
    tune_trials: int = 8  # optuna evaluations per structurally new candidate
    tune_batch: int = 4  # settings evaluated together in one child
    tune_top: int = 2  # best seed variants that get tuned
    generations: int = 3  # LLM generations per task
    islands: int = 2
    migrate_every: int = 2
    seed: int = 0
    max_variants: int = 8  # structural variants taken from the rule proposer per task


@dataclass
class TaskOutcome:
    """What the run found for one task (printed as the final table, written to the report)."""

    task: str
    family: str
    translated: bool = False
    notes: list[str] = field(default_factory=list)
    candidates: int = 0
    verdicts: Counter = field(default_factory=Counter)
    best_kernel_id: int | None = None
    best_result: EvalResult | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (candidates so far, best speedup)

    @property
    def best_speedup(self) -> float | None:
        return self.best_result.speedup_eager if self.best_result else None


@dataclass(frozen=True)
class Callbacks:
    """How the loop reports progress (the CLI draws a tqdm bar); all optional."""

    on_result: Callable[[TaskOutcome, EvalResult], None] = lambda outcome, result: None
    on_note: Callable[[str], None] = lambda text: None


class TaskSearch:
    """The search for one task inside a run."""

    def __init__(self, run: "TuneRun", task: Task) -> None:
        self.run = run
        self.task = task
        self.config = run.search
        self.population = Population(islands=self.config.islands, seed=self.config.seed)
        self.novelty = run.ledger.novelty(task)  # its state is the archive's: every driver's admissions
        self.done: dict[tuple[str, str], tuple[int, EvalResult]] = {}  # (source hash, params) -> result
        self.outcome = TaskOutcome(task=task.name, family=task.family)
        self.lock = threading.Lock()

    # -- resume ------------------------------------------------------------------------------
    def restore(self, items: list[Any]) -> None:
        """Take evaluations made before (this run before a restart, or other drivers) as done."""
        for item in items:
            if item.task_hash != self.task.content_hash:
                continue
            self.novelty.remember(item.source)
            self._remember(item.source_hash, item.source, item.params, item.kernel_id, item.result, fresh=False)

    def _remember(self, digest: str, source: str, params: dict, kernel_id: int, result: EvalResult,
                  fresh: bool) -> None:
        """Count a setting's result once, however many threads (or drivers) saw it finish."""
        with self.lock:
            key = (digest, params_key(params))
            if key in self.done:
                return
            self.done[key] = (kernel_id, result)
        self._account(kernel_id, source, params, result, resumed=not fresh)

    # -- evaluation --------------------------------------------------------------------------
    def _account(self, kernel_id: int, source: str, params: dict, result: EvalResult, resumed: bool = False) -> None:
        with self.lock:
            self.outcome.candidates += 1
            self.outcome.verdicts[result.verdict.value if result.accepted else result.stage.value] += 1
            member = Member(kernel_id, source, dict(params), result)
            best = self.outcome.best_result
            if result.accepted and (best is None or member.fitness > Member(0, "", {}, best).fitness):
                self.outcome.best_result, self.outcome.best_kernel_id = result, kernel_id
            self.population.add(member)
            self.outcome.curve.append((self.outcome.candidates, self.outcome.best_speedup or 0.0))
        if not resumed:
            self.run.callbacks.on_result(self.outcome, result)

    def evaluate(self, proposal: Proposal, settings: list[dict[str, Any]]) -> list[EvalResult]:
        """Evaluate ``proposal`` at each setting not evaluated before; record each result.

        Each setting is claimed in the archive first: settings another driver evaluated are
        taken from the archive, settings a live driver is evaluating are waited for.
        """
        digest = source_hash(proposal.source)
        pending = [p for p in settings if (digest, params_key(p)) not in self.done]
        waited = 0.0
        while pending:
            claimed = self.run.ledger.claim(self.task, digest, pending)
            for state, result in claimed.done:
                self._remember(digest, proposal.source, state.params, state.kernel_id, result, fresh=False)
            if claimed.mine:
                self._evaluate_claimed(proposal, digest, claimed.mine)
            pending = [s.params for s in claimed.held if (digest, params_key(s.params)) not in self.done]
            if pending:
                waited = self.run.ledger.wait(claimed.held, waited)
        return [self.done[(digest, params_key(p))][1] for p in settings]

    def _evaluate_claimed(self, proposal: Proposal, digest: str, mine: list[Any]) -> None:
        """Evaluate the settings this driver holds claims on; give back those it does not finish."""
        allowed = 0
        try:
            allowed = self.run.reserve(len(mine))
            path = self.run.candidate_file(proposal.source)
            results = self.run.pool.submit(self.task, path, [c.params for c in mine[:allowed]]).result()
            for claim, result in zip(mine, results):
                kernel_id = self.run.record(self.task, proposal, claim.params, result, claim=claim)
                self._remember(digest, proposal.source, claim.params, kernel_id, result, fresh=True)
        finally:
            self.run.ledger.release([c for c in mine if (digest, params_key(c.params)) not in self.done])
        if allowed < len(mine):
            self.run.budget.check()  # recorded what the budget allowed; now stop

    # -- phases ------------------------------------------------------------------------------
    def seed_with_rules(self) -> list[Proposal]:
        proposer = self.run.proposers.get("rules")
        if proposer is None:
            return []
        batch = proposer.propose(ProposalRequest(task=self.task, operator="translate", n=self.config.max_variants))
        self.outcome.notes.extend(batch.notes)
        self.outcome.translated = bool(batch.proposals)
        for note in batch.notes:
            self.run.callbacks.on_note(f"{self.task.name}: {note}")
        admitted = [p for p in batch.proposals[: self.config.max_variants] if self._admit(p)]
        with ThreadPoolExecutor(max_workers=self.run.pool.workers) as executor:
            list(executor.map(lambda p: self.evaluate(p, [p.default_params]), admitted))
        return admitted

    def _admit(self, proposal: Proposal) -> bool:
        digest = source_hash(proposal.source)
        if any(key[0] == digest for key in self.done):
            return True  # admitted before (this run, or before a resume): its results are known
        ok, why = self.novelty.admit(proposal.source)
        if not ok:
            self.outcome.verdicts["duplicate"] += 1
            log.info("%s: proposal not evaluated: %s", self.task.name, why)
        return ok

    def tune_proposals(self, proposals: list[Proposal]) -> None:
        """Optuna over the parameters of the best few structurally distinct proposals."""
        scored = []
        for proposal in proposals:
            if not proposal.params_space:
                continue
            key = (source_hash(proposal.source), params_key(proposal.default_params))
            result = self.done.get(key, (None, None))[1]
            if result is not None and result.accepted:
                scored.append((Member(0, proposal.source, {}, result).fitness, proposal))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        chosen = [p for _, p in scored[: self.config.tune_top]]

        def run_one(proposal: Proposal) -> None:
            digest = source_hash(proposal.source)
            with self.lock:  # other tuning threads add results meanwhile
                known = {k[1]: v[1] for k, v in self.done.items() if k[0] == digest}
            study = self.run.studies.open(f"{self.run.ledger.task_scope(self.task)}/{self.task.content_hash}/{digest}")
            tune(proposal.params_space, lambda settings: self.evaluate(_as_tuned(proposal), settings),
                 trials=self.config.tune_trials, batch=self.config.tune_batch, seed=self.config.seed,
                 start=proposal.default_params, known=known, study=study)

        with ThreadPoolExecutor(max_workers=self.run.pool.workers) as executor:
            list(executor.map(run_one, chosen))

    def evolve_with_llm(self) -> None:
        proposer = self.run.proposers.get("llm")
        if proposer is None:
            return
        rng = self.population.rng
        for generation in range(self.config.generations):
            requests = [self._request(island, rng) for island in range(len(self.population.islands))]
            with ThreadPoolExecutor(max_workers=max(1, len(requests))) as executor:
                batches = list(executor.map(proposer.propose, requests))
            for island, batch in enumerate(batches):
                for call in batch.llm_calls:
                    self.run.record_llm_call(call, batch_operator=requests[island].operator)
                self.outcome.notes.extend(batch.notes)
            fresh = [(island, p) for island, batch in enumerate(batches) for p in batch.proposals if self._admit(p)]
            with ThreadPoolExecutor(max_workers=self.run.pool.workers) as executor:
                list(executor.map(lambda pair: self.evaluate(pair[1], [pair[1].default_params]), fresh))
            self.tune_proposals([p for _, p in fresh])
            if (generation + 1) % self.config.migrate_every == 0:
                self.population.migrate()

    def _request(self, island: int, rng: Any) -> ProposalRequest:
        parent = self.population.select(island)
        examples = tuple(self.run.examples(self.task))
        if parent is None:
            failed = self.population.failed(island)
            if failed is not None:
                return ProposalRequest(self.task, "fix", (self._parent(failed),), examples)
            return ProposalRequest(self.task, "translate", (), examples)
        roll = rng.random()
        failed = self.population.failed(island)
        if failed is not None and roll < 0.2:
            return ProposalRequest(self.task, "fix", (self._parent(failed),), examples)
        pair = self.population.select_pair(island)
        if pair is not None and roll < 0.45:
            return ProposalRequest(self.task, "crossover", tuple(self._parent(m) for m in pair), examples)
        return ProposalRequest(self.task, "optimize", (self._parent(parent),), examples)

    @staticmethod
    def _parent(member: Member) -> Parent:
        return Parent(member.source, member.params, member.result, member.kernel_id)

    def run_all(self) -> TaskOutcome:
        try:
            proposals = []
            if self.config.proposer in ("rules", "mixed"):
                proposals = self.seed_with_rules()
                self.tune_proposals(proposals)
            if self.config.proposer in ("llm", "mixed"):
                self.evolve_with_llm()
        except BudgetExhausted as exc:
            self.outcome.notes.append(f"stopped: {exc}")
            raise
        return self.outcome


def _as_tuned(proposal: Proposal) -> Proposal:
    from dataclasses import replace

    return replace(proposal, operator="tune") if proposal.operator != "tune" else proposal


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

    def reserve(self, wanted: int) -> int:
        """Take up to ``wanted`` candidates from the budget (atomically across GPU workers)."""
        with self._budget_lock:
            self.budget.check()
            cap = self.budget.max_candidates
            allowed = wanted if cap is None else max(0, min(wanted, cap - self.budget.spent()["candidates"]))
            if allowed == 0:
                self.budget.check()
                raise BudgetExhausted(f"max_candidates reached: {cap} candidates evaluated")
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
        outcomes = []
        self.ledger.start()
        try:
            for task in tasks:
                search = TaskSearch(self, task)
                search.restore(self.history)
                search.restore(self.ledger.finished(task))  # other drivers' work in this scope
                try:
                    outcomes.append(search.run_all())
                    search.restore(self.ledger.finished(task))  # what other drivers finished meanwhile
                except BudgetExhausted as exc:
                    outcomes.append(search.outcome)
                    self.callbacks.on_note(f"budget spent: {exc}")
                    break
        finally:
            self.ledger.close()
        return outcomes


__all__ = ["Callbacks", "SearchConfig", "TaskOutcome", "TaskSearch", "TuneRun"]
