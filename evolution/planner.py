"""Which operator an island asks the model for next, and from which parents.

Feedback is the point of the loop: a kernel the evaluator rejected goes back to the model in
a ``fix`` request quoting why; an accepted one in an ``optimize`` request with its
measurements; two accepted ones in a ``crossover``. ``translate`` (from the reference alone)
is only for an island that has nothing to work from. Each rejected kernel is sent back at
most ``MAX_FIX_ATTEMPTS`` times, so a hopeless one does not take every request, and not
again once a fix of it was accepted.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from evolution.population import Member, Population

MAX_FIX_ATTEMPTS = 2
P_FIX = 0.3  # with accepted kernels at hand: chance of fixing a rejected one (when there is one)
P_CROSSOVER = 0.25  # ... of crossing two accepted ones (when there are two); else optimize


@dataclass(frozen=True)
class Plan:
    operator: str  # translate | fix | optimize | crossover
    parents: tuple[Member, ...] = ()


class Planner:
    """Chooses each island's next request; remembers which kernels were sent back to be fixed."""

    def __init__(self, population: Population, rng: random.Random) -> None:
        self.population = population
        self.rng = rng
        self.fix_attempts: Counter[int] = Counter()  # kernel id -> fix requests sent for it
        self.resolved: set[int] = set()  # kernels whose fix the evaluator accepted

    def next(self, island: int) -> Plan:
        failed = self.population.failed(island, exclude=self._exhausted())
        if failed is not None and not self.population.islands[island].members:
            return self._fix(failed)  # the island's own attempts all failed: repair them first
        accepted = self.population.select(island)
        if accepted is None:
            return Plan("translate")
        roll = self.rng.random()
        if failed is not None and roll < P_FIX:
            return self._fix(failed)
        if roll < P_FIX + P_CROSSOVER:
            pair = self.population.select_pair(island)
            if pair is not None:
                return Plan("crossover", pair)
        return Plan("optimize", (accepted,))

    def _fix(self, member: Member) -> Plan:
        self.fix_attempts[member.kernel_id] += 1
        return Plan("fix", (member,))

    def fixed(self, kernel_ids: tuple[int, ...]) -> None:
        """A fix of these kernels was accepted: never send them back again."""
        self.resolved.update(kernel_ids)

    def _exhausted(self) -> set[int]:
        return {k for k, n in self.fix_attempts.items() if n >= MAX_FIX_ATTEMPTS} | self.resolved
