"""Islands of candidates and an elite archive keyed by behaviour (MAP-Elites style).

Each island evolves on its own and sends its best to the next one every few generations, so
one early lucky kernel does not take over the whole search. The elite map keeps the best
kernel per structural niche (how many kernels, shared memory or not, vectorized or not, warp
shuffles or not), so structurally different ideas survive even when slower today.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from autotuner.evaluator.verdict import EvalResult, Verdict


@dataclass
class Member:
    kernel_id: int
    source: str
    params: dict[str, Any]
    result: EvalResult
    origin: str = ""  # who proposed it: "rules", "llm:<model>" (told to the model in prompts)

    @property
    def fitness(self) -> float:
        """Speedup against eager for accepted kernels; failures rank below every success."""
        if not self.result.accepted:
            return -1.0
        timed = self.result.timed
        if self.result.speedup_eager is not None:
            return self.result.speedup_eager
        return 1.0 / timed.candidate.median_ms if timed and timed.candidate else 0.0


def niche(source: str) -> tuple[int, bool, bool, bool]:
    """A coarse description of a kernel's structure: its cell in the elite map."""
    kernels = len(re.findall(r"__global__", source))
    return (
        min(kernels, 3),
        "__shared__" in source,
        bool(re.search(r"float4|uint4|int4|__nv_bfloat162|float2|ld\.global\.v", source)),
        "__shfl" in source,
    )


@dataclass
class Island:
    """Accepted members, fittest first, and the newest rejected ones (kept apart, so a full
    island of working kernels never crowds out the failures waiting to be fixed)."""

    members: list[Member] = field(default_factory=list)
    capacity: int = 16
    rejected: list[Member] = field(default_factory=list)
    rejected_capacity: int = 8

    def add(self, member: Member) -> None:
        if not member.result.accepted:
            self.rejected.append(member)
            del self.rejected[:-self.rejected_capacity]
            return
        self.members.append(member)
        self.members.sort(key=lambda m: m.fitness, reverse=True)
        del self.members[self.capacity:]

    @property
    def best(self) -> Member | None:
        return self.members[0] if self.members else None


class Population:
    """Islands + elite map; ``select`` draws parents, ``migrate`` moves the best around."""

    def __init__(self, islands: int = 3, capacity: int = 16, seed: int = 0) -> None:
        self.islands = [Island(capacity=capacity) for _ in range(max(1, islands))]
        self.elites: dict[tuple, Member] = {}
        self.rng = random.Random(seed)
        self._next_island = 0

    def add(self, member: Member, island: int | None = None) -> None:
        if island is None:
            island = self._next_island
            self._next_island = (self._next_island + 1) % len(self.islands)
        self.islands[island % len(self.islands)].add(member)
        if member.result.accepted:
            cell = niche(member.source)
            incumbent = self.elites.get(cell)
            if incumbent is None or member.fitness > incumbent.fitness:
                self.elites[cell] = member

    @property
    def best(self) -> Member | None:
        candidates = [i.best for i in self.islands if i.best is not None]
        return max(candidates, key=lambda m: m.fitness, default=None)

    def accepted(self) -> list[Member]:
        return [m for island in self.islands for m in island.members if m.result.accepted]

    def select(self, island: int, k: int = 3) -> Member | None:
        """Tournament selection among the island's accepted members, elites as a fallback."""
        pool = [m for m in self.islands[island].members if m.result.accepted] or list(self.elites.values())
        if not pool:
            return None
        contenders = self.rng.sample(pool, min(k, len(pool)))
        return max(contenders, key=lambda m: m.fitness)

    def select_pair(self, island: int) -> tuple[Member, Member] | None:
        """Two different parents for crossover: the island's pick and an elite of another niche."""
        first = self.select(island)
        if first is None:
            return None
        others = [m for m in self.elites.values() if m.kernel_id != first.kernel_id]
        others += [m for m in self.accepted() if m.kernel_id != first.kernel_id]
        if not others:
            return None
        return first, self.rng.choice(others)

    def failed(self, island: int, exclude: set[int] | frozenset[int] = frozenset()) -> Member | None:
        """A rejected kernel of the island to send back for fixing, the newest first.

        Any rejection has a reason the model can act on (the static rule, the compile error,
        the mismatch, the integrity finding, the timeout); an ``error`` verdict is the
        harness's own failure and says nothing about the kernel. ``exclude``: kernel ids
        already sent back often enough.
        """
        pool = [m for m in self.islands[island].rejected
                if m.result.verdict is Verdict.REJECTED and m.kernel_id not in exclude]
        return max(pool, key=lambda m: m.kernel_id) if pool else None

    def migrate(self) -> None:
        """Ring migration: each island receives a copy of the previous island's best."""
        bests = [island.best for island in self.islands]
        for i, best in enumerate(bests):
            if best is not None and len(self.islands) > 1:
                target = self.islands[(i + 1) % len(self.islands)]
                if all(m.kernel_id != best.kernel_id for m in target.members):
                    target.add(best)
