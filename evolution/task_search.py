"""The search for one task inside a run: evaluate and record, seed from the rules, tune.

Every evaluation is recorded in the archive the moment it exists (``TuneRun.record``) and
put into the population; a setting evaluated before (in this run or before a resume) is
never evaluated again, nor one another driver on the same archive evaluated or is evaluating
(each setting is claimed in the archive first: ``evolution.ledger``). Lineage is recorded as it happens: a tuned setting's parent is the
kernel it was tuned from (its source at the proposer's default parameters), an LLM
proposal's parents are the kernels in its request. The LLM phase lives in ``evolve``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from autotuner.candidate import source_hash
from autotuner.errors import BudgetExhausted, ShareSpent
from autotuner.evaluator.verdict import EvalResult, Verdict
from autotuner.tasks import Task
from evolution.outcome import TaskOutcome
from evolution.planner import Plan
from evolution.population import Member, Population
from evolution.proposers.base import Parent, Proposal, ProposalRequest
from evolution.stopping import TaskShare
from evolution.tuning import params_key, tune

if TYPE_CHECKING:
    from evolution.loop import TuneRun

log = logging.getLogger(__name__)


class TaskSearch:
    """The search for one task inside a run; ``run_all`` runs it and says why it stopped."""

    def __init__(self, run: "TuneRun", task: Task, share: TaskShare | None = None) -> None:
        self.run = run
        self.task = task
        self.config = run.search
        self.share = share if share is not None else TaskShare(run.budget, 1)
        self.population = Population(islands=self.config.islands, seed=self.config.seed)
        self.novelty = run.ledger.novelty(task)  # its state is the archive's: every driver's admissions
        self.done: dict[tuple[str, str], tuple[int, EvalResult]] = {}  # (source hash, params) -> result
        self.island_of: dict[str, int] = {}  # source hash -> the island whose request produced it
        self.admitted: set[str] = set()  # source hashes this search admitted
        self.best: Member | None = None
        self.outcome = TaskOutcome(task=task.name, family=task.family)
        self.lock = threading.Lock()

    # -- resume ------------------------------------------------------------------------------
    def restore(self, items: list[Any]) -> None:
        """Take evaluations made before (a killed run of this one, or other drivers) as done:
        novelty, results, population. Harness errors are not results: those settings are
        evaluated again."""
        for item in items:
            if item.task_hash != self.task.content_hash or item.result.verdict is Verdict.ERROR:
                continue
            self.novelty.remember(item.source)
            self._remember(item.source_hash, Member(item.kernel_id, item.source, dict(item.params), item.result,
                                                    getattr(item, "proposer", None) or ""), fresh=False)

    def _remember(self, digest: str, member: Member, fresh: bool, island: int | None = None) -> None:
        """Count a setting's result once, however many threads (or drivers) saw it finish."""
        with self.lock:
            key = (digest, params_key(member.params))
            if key in self.done:
                return
            self.done[key] = (member.kernel_id, member.result)
        self._account(member, island, resumed=not fresh)

    # -- evaluation --------------------------------------------------------------------------
    def _account(self, member: Member, island: int | None = None, resumed: bool = False) -> None:
        result = member.result
        with self.lock:
            self.outcome.candidates += 1
            self.outcome.evaluated += 0 if resumed else 1
            self.outcome.verdicts[result.verdict.value if result.accepted else result.stage.value] += 1
            if result.accepted and (self.best is None or member.fitness > self.best.fitness):
                self.best = member
                self.outcome.best_result, self.outcome.best_kernel_id = result, member.kernel_id
            self.population.add(member, island)
            self.outcome.curve.append((self.outcome.candidates, self.outcome.best_speedup or 0.0))
        if not resumed:
            self.run.callbacks.on_result(self.outcome, result)

    def evaluate(self, proposal: Proposal, settings: list[dict[str, Any]], island: int | None = None) -> list[EvalResult]:
        """Evaluate ``proposal`` at each setting not evaluated before; record each result.

        Each setting is claimed in the archive first: settings another driver evaluated are
        taken from the archive, settings a live driver is evaluating are waited for. Takes
        candidates from the run's budget and this task's share first: raises
        ``BudgetExhausted`` or ``ShareSpent`` (after recording what was allowed) when they run out.
        """
        digest = source_hash(proposal.source)
        pending = [p for p in settings if (digest, params_key(p)) not in self.done]
        waited = 0.0
        while pending:
            with self.timed("parent.claim"):
                claimed = self.run.ledger.claim(self.task, digest, pending)
            for state, result in claimed.done:
                self._remember(digest, Member(state.kernel_id, proposal.source, dict(state.params), result,
                                              proposal.proposer), fresh=False, island=island)
            if claimed.mine:
                self._evaluate_claimed(proposal, digest, claimed.mine, island)
            pending = [s.params for s in claimed.held if (digest, params_key(s.params)) not in self.done]
            if pending:
                waited = self.run.ledger.wait(claimed.held, waited)
        return [self.done[(digest, params_key(p))][1] for p in settings]

    def _evaluate_claimed(self, proposal: Proposal, digest: str, mine: list[Any], island: int | None) -> None:
        """Evaluate the settings this driver holds claims on; give back those it does not finish."""
        allowed = 0
        try:
            allowed = self.run.reserve(len(mine), self.share)
            path = self.run.candidate_file(proposal.source)
            with self.timed("parent.evaluate"):  # the batch's wall, queueing and the child's life included
                results = self.run.pool.submit(self.task, path, [c.params for c in mine[:allowed]]).result()
            with self.lock:
                self.outcome.seconds.update(batch_phases(results))
            for claim, result in zip(mine, results):
                with self.timed("parent.record"):
                    kernel_id = self.run.record(self.task, proposal, claim.params, result, claim=claim)
                self._remember(digest, Member(kernel_id, proposal.source, dict(claim.params), result,
                                              proposal.proposer), fresh=True, island=island)
        finally:
            self.run.ledger.release([c for c in mine if (digest, params_key(c.params)) not in self.done])
        if allowed < len(mine):
            self.run.budget.check()  # recorded what the budget allowed; now stop
            self.share.check()

    def admit(self, proposal: Proposal) -> tuple[bool, str]:
        """Whether a proposal is new enough to evaluate, and if not, why."""
        digest = source_hash(proposal.source)
        if any(key[0] == digest for key in self.done):
            return True, ""  # admitted before (this run, or before a resume): its results are known
        with self.lock:
            repeat = digest in self.admitted
            self.admitted.add(digest)
        if repeat:  # this search admitted it already and is evaluating it: the same answer twice
            ok, why = False, "identical to an earlier candidate (after removing comments and spacing)"
        else:  # the archive's filter: every driver's admissions
            ok, why = self.novelty.admit(proposal.source)
        if not ok:
            self.outcome.verdicts["duplicate"] += 1
            log.info("%s: proposal not evaluated: %s", self.task.name, why)
        return ok, why

    # -- phases ------------------------------------------------------------------------------
    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall seconds to ``outcome.seconds[phase]`` (however it ends). Phases
        with a dot are parts of a top-level one: ``parent.*`` of the search thread's ``tune`` /
        ``variants`` / ``evolve`` time (archive claims and records, each batch's evaluation wall),
        ``evaluator.*`` of the children's own (``batch_phases``)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            with self.lock:
                self.outcome.seconds[phase] += time.perf_counter() - started

    def seed_with_rules(self) -> list[Proposal]:
        proposer = self.run.proposers.get("rules")
        if proposer is None:
            return []
        with self.timed("propose"):
            batch = proposer.propose(ProposalRequest(task=self.task, operator="translate", n=self.config.max_variants))
        self.outcome.notes.extend(batch.notes)
        self.outcome.translated = bool(batch.proposals)
        for note in batch.notes:
            self.run.callbacks.on_note(f"{self.task.name}: {note}")
        admitted = [p for p in batch.proposals[: self.config.max_variants] if self.admit(p)[0]]
        with self.timed("variants"), ThreadPoolExecutor(max_workers=self.run.pool.workers) as executor:
            list(executor.map(lambda p: self.evaluate(p, [p.default_params]), admitted))
        return admitted

    def tune_proposals(self, proposals: list[Proposal]) -> int:
        """Optuna over the parameters of the best few accepted, structurally distinct proposals;
        returns how many were tuned. Every tuned setting is recorded with the kernel it was
        tuned from as its parent.
        """
        scored = []
        for proposal in proposals:
            if not proposal.params_space:
                continue
            kernel_id, result = self.done.get((source_hash(proposal.source), params_key(proposal.default_params)),
                                              (None, None))
            if result is not None and result.accepted:
                scored.append((Member(0, proposal.source, {}, result).fitness, kernel_id, proposal))
        scored.sort(key=lambda item: item[0], reverse=True)
        chosen = [(kernel_id, p) for _, kernel_id, p in scored[: self.config.tune_top]]

        def run_one(item: tuple[int, Proposal]) -> None:
            parent_id, proposal = item
            digest = source_hash(proposal.source)
            with self.lock:  # other tuning threads add results meanwhile
                known = {k[1]: v[1] for k, v in self.done.items() if k[0] == digest}
            tuned = tuned_from(proposal, parent_id)
            island = self.island_of.get(digest)
            study = self.run.studies.open(f"{self.run.ledger.task_scope(self.task)}/{self.task.content_hash}/{digest}")
            tune(proposal.params_space, lambda settings: self.evaluate(tuned, settings, island),
                 trials=self.config.tune_trials, batch=self.config.tune_batch, seed=self.config.seed,
                 start=proposal.default_params, known=known, study=study)

        with self.timed("tune"), ThreadPoolExecutor(max_workers=self.run.pool.workers) as executor:
            list(executor.map(run_one, chosen))
        return len(chosen)

    # -- requests to the model ---------------------------------------------------------------
    def request(self, plan: Plan, notes: tuple[str, ...] = ()) -> ProposalRequest:
        """The planned operator as a request: parents with their feedback, the kernel to beat."""
        return ProposalRequest(self.task, plan.operator, tuple(as_parent(m) for m in plan.parents),
                               tuple(self.run.examples(self.task)),
                               incumbent=as_parent(self.best) if self.best is not None else None, notes=notes)

    def best_fitness(self) -> float | None:
        return self.best.fitness if self.best is not None else None

    def run_all(self) -> TaskOutcome:
        """Seed, tune, evolve, until this task's share is spent or its search is over.

        Sets ``outcome.stop_reason``; a spent run budget propagates as ``BudgetExhausted``.
        """
        from evolution.evolve import evolve

        try:
            proposals: list[Proposal] = []
            tuned = 0
            if self.config.proposer in ("rules", "mixed"):
                proposals = self.seed_with_rules()
                tuned = self.tune_proposals(proposals)
            if self.config.proposer in ("llm", "mixed"):
                with self.timed("evolve"):
                    reason = evolve(self)
            else:
                reason = (f"exhausted: every rule variant evaluated ({len(proposals)}), {tuned} of them tuned"
                          if proposals else "exhausted: the rule proposer has no translation for this task")
        except ShareSpent as exc:
            reason = f"share: {exc}"
        except BudgetExhausted as exc:
            self.outcome.stop_reason = f"budget: {str(exc).removeprefix('budget exhausted: ')}"
            raise
        self.outcome.stop_reason = reason
        return self.outcome


def as_parent(member: Member) -> Parent:
    return Parent(member.source, member.params, member.result, member.kernel_id, member.origin)


def tuned_from(proposal: Proposal, parent_id: int | None) -> Proposal:
    """The proposal as optuna evaluates it: operator ``tune``, parent the kernel it started from."""
    parents = (parent_id,) if parent_id is not None else proposal.parents
    return replace(proposal, operator="tune", parents=parents)


# The parts of a phase worth summing over a run (``evaluator.verify.draw_inputs``, ...): where the
# largest phases go. Per-shape parts (``verify.shape:NAME``) are left out: names differ per task.
PART_PHASES = ("verify", "time_and_check", "setup", "compile_ahead")


def batch_phases(results: list[EvalResult]) -> dict[str, float]:
    """``evaluator.<phase>`` seconds of one batch of settings evaluated in one child: the
    top-level phases and the parts of ``PART_PHASES`` (``evaluator.verify.compare``; already
    inside their phase). A phase the child spent once for the batch (its start, the task's
    setup and baselines) is copied into every result with the same value: counted once."""
    def wanted(key: str) -> bool:
        top, _, part = key.partition(".")
        return not part or (top in PART_PHASES and not part.startswith("shape:"))

    out: dict[str, float] = {}
    for key in {k for r in results for k in r.phases_s if wanted(k)}:
        values = [r.phases_s[key] for r in results if key in r.phases_s]
        shared = len(results) > 1 and len(values) == len(results) and len(set(values)) == 1
        out[f"evaluator.{key}"] = values[0] if shared else sum(values)
    return out
