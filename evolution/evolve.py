"""The LLM phase of one task's search: generations until the budget is spent or nothing improves.

Each generation asks the model once per island, for the operator the ``Planner`` picks (fix a
rejected kernel, optimize or cross accepted ones, translate when an island has nothing),
evaluates what came back, tunes the accepted ones with optuna and, every few generations,
migrates the best between islands. There is no fixed number of generations: the search goes
on while the task's share of the run's budget lasts and stops when ``patience`` generations
in a row brought no improvement (``search.generations`` is an optional cap, off by default).
An answer that could not be used (no code, cut off, a copy of an earlier kernel) is told to
the model in that island's next request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from autotuner.candidate import source_hash
from evolution.planner import Planner
from evolution.proposers.base import Proposal, ProposalBatch
from evolution.stopping import Patience

if TYPE_CHECKING:
    from evolution.task_search import TaskSearch

UNPARSEABLE = "unparseable response"  # how the LLM proposer marks an answer holding no candidate


def evolve(search: "TaskSearch") -> str:
    """Run generations for ``search``'s task; returns why they stopped (``TaskOutcome.stop_reason``).

    Raises ``BudgetExhausted`` (the run's budget) or ``ShareSpent`` (the task's share) from
    inside a generation, after recording what was evaluated.
    """
    proposer = search.run.proposers.get("llm")
    if proposer is None:
        return "exhausted: no LLM proposer in this run"
    config = search.config
    planner = Planner(search.population, search.population.rng)
    patience = Patience(config.patience, best=search.best_fitness())
    notes: dict[int, tuple[str, ...]] = {}
    islands = range(len(search.population.islands))
    while True:
        search.run.budget.check()
        search.share.check()
        if config.generations is not None and search.outcome.generations >= config.generations:
            return f"generations: the cap of {config.generations} generations per task is reached"
        requests = [search.request(planner.next(i), notes.get(i, ())) for i in islands]
        with ThreadPoolExecutor(max_workers=len(requests)) as executor:
            batches = list(executor.map(proposer.propose, requests))
        fresh: list[tuple[int, Proposal]] = []
        for island, (request, batch) in enumerate(zip(requests, batches)):
            search.outcome.requests[request.operator] += 1
            _record(search, batch, request.operator)
            notes[island] = _unusable(batch)
            for proposal in batch.proposals:
                ok, why = search.admit(proposal)
                if ok:
                    fresh.append((island, proposal))
                    search.island_of[source_hash(proposal.source)] = island
                else:
                    notes[island] += (f"your answer was a {why}: it was not evaluated",)
        with ThreadPoolExecutor(max_workers=search.run.pool.workers) as executor:
            results = list(executor.map(lambda pair: search.evaluate(pair[1], [pair[1].default_params], pair[0]), fresh))
        for (_, proposal), (result,) in zip(fresh, results):
            if proposal.operator == "fix" and result.accepted:
                planner.fixed(proposal.parents)
        search.tune_proposals([p for _, p in fresh])
        search.outcome.generations += 1
        if search.outcome.generations % config.migrate_every == 0:
            search.population.migrate()
        if patience.update(search.best_fitness()):
            return patience.reason()


def _record(search: "TaskSearch", batch: ProposalBatch, operator: str) -> None:
    for call in batch.llm_calls:
        search.run.record_llm_call(call, batch_operator=operator)
    search.outcome.notes.extend(batch.notes)


def _unusable(batch: ProposalBatch) -> tuple[str, ...]:
    """The model's own faults in a batch (not HTTP failures): told to it in the next request."""
    return tuple(f"your answer was unusable: {call.error}" for call in batch.llm_calls
                 if call.error and call.error.startswith(UNPARSEABLE))
