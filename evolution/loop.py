"""The tuning run: seed from the rule proposer, tune parameters with optuna, evolve with an LLM.

Every proposal and every evaluation goes into the archive the moment it exists, under the
run's id; the run keeps nothing else that matters. A killed run resumes from the archive
alone: settings already evaluated are read back (and told to optuna, and put back into the
population) instead of being run again.
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
from evolution.evalpool import EvalPool
from evolution.novelty import NoveltyFilter
from evolution.population import Member, Population
from evolution.proposers.base import Parent, Proposal, ProposalRequest, Proposer
from evolution.tuning import params_key, tune

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
        self.novelty = NoveltyFilter()
        self.done: dict[tuple[str, str], tuple[int, EvalResult]] = {}  # (source hash, params) -> result
        self.outcome = TaskOutcome(task=task.name, family=task.family)
        self.lock = threading.Lock()

    # -- resume ------------------------------------------------------------------------------
    def restore(self, items: list[Any]) -> None:
        for item in items:
            if item.task_hash != self.task.content_hash:
                continue
            self.novelty.remember(item.source)
            self.done[(item.source_hash, params_key(item.params))] = (item.kernel_id, item.result)
            self._account(item.kernel_id, item.source, item.params, item.result, resumed=True)

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
        """Evaluate ``proposal`` at each setting not evaluated before; record each result."""
        digest = source_hash(proposal.source)
        todo = [p for p in settings if (digest, params_key(p)) not in self.done]
        results_by_key = {params_key(p): self.done[(digest, params_key(p))][1] for p in settings
                          if (digest, params_key(p)) in self.done}
        if todo:
            allowed = self.run.reserve(len(todo))
            path = self.run.candidate_file(proposal.source)
            results = self.run.pool.submit(self.task, path, todo[:allowed]).result()
            for params, result in zip(todo, results):
                kernel_id = self.run.record(self.task, proposal, params, result)
                self.done[(digest, params_key(params))] = (kernel_id, result)
                self._account(kernel_id, proposal.source, params, result)
                results_by_key[params_key(params)] = result
            if allowed < len(todo):
                self.run.budget.check()  # recorded what the budget allowed; now stop
        return [results_by_key[params_key(p)] for p in settings]

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
            known = {k[1]: v[1] for k, v in self.done.items() if k[0] == digest}
            tune(proposal.params_space, lambda settings: self.evaluate(_as_tuned(proposal), settings),
                 trials=self.config.tune_trials, batch=self.config.tune_batch, seed=self.config.seed,
                 start=proposal.default_params, known=known)

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
                 pool: EvalPool, budget: Any, workdir: Path, callbacks: Callbacks | None = None) -> None:
        self.archive = archive
        self.run_id = run_id
        self.search = search
        self.proposers = proposers
        self.pool = pool
        self.budget = budget
        self.workdir = workdir
        self.callbacks = callbacks or Callbacks()
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

    def record(self, task: Task, proposal: Proposal, params: dict[str, Any], result: EvalResult) -> int:
        from archive import KernelSpec

        call = proposal.llm_call
        spec = KernelSpec(source=proposal.source, params=dict(params), operator=proposal.operator,
                          proposer=proposal.proposer, model=call.model if call else None,
                          prompt=call.prompt if call else None, parents=tuple(proposal.parents), run_id=self.run_id)
        with self._write_lock:
            return self.archive.record(task, spec, result, run_id=self.run_id).kernel_id

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
        for task in tasks:
            search = TaskSearch(self, task)
            search.restore(self.history)
            try:
                outcomes.append(search.run_all())
            except BudgetExhausted as exc:
                outcomes.append(search.outcome)
                self.callbacks.on_note(f"budget spent: {exc}")
                break
        return outcomes


__all__ = ["Callbacks", "SearchConfig", "TaskOutcome", "TaskSearch", "TuneRun"]
