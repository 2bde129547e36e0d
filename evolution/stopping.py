"""When one task's search stops: its fair share of the run's budget, or convergence.

A run has one budget (``Budget``: candidates, tokens, cost, wall time) and several tasks,
searched one after another. Without shares the first task would spend everything, so each
task gets ``TaskShare``: what was left of each capped quantity when the task started,
divided by the tasks still to search (rounded up for candidates). A task that stops early
(converged) leaves its rest to the tasks after it.

A search without a fixed length needs a sign that more generations will not help:
``Patience`` counts generations in a row in which the best fitness did not rise by at least
``MIN_GAIN`` (1%: timing noise must not count as progress) and reports convergence after
``patience`` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autotuner.errors import ShareSpent
from evolution.budget import Budget

MIN_GAIN = 0.01  # relative rise of the best fitness that counts as an improvement

# Budget cap -> the key of Budget.spent() it limits, and how it is named in reasons
_SPENT_KEY = {"max_candidates": "candidates", "max_tokens": "llm_tokens", "max_cost_usd": "llm_usd",
              "max_wall_s": "wall_s"}  # fmt: skip


class TaskShare:
    """One task's fair share of a run's budget, fixed when the task starts."""

    def __init__(self, budget: Budget, tasks_left: int) -> None:
        self.budget = budget
        self.tasks_left = max(1, tasks_left)
        start = budget.spent()
        self.start = {cap: float(start[key]) for cap, key in _SPENT_KEY.items()}
        self.limits: dict[str, float] = {}  # cap -> the spent() value at which this task's share is used up
        for cap, value in budget.caps().items():
            if value is None:
                continue
            left = max(0.0, float(value) - self.start[cap])
            part = math.ceil(left / self.tasks_left) if cap == "max_candidates" else left / self.tasks_left
            self.limits[cap] = self.start[cap] + part

    def exhausted(self) -> str | None:
        """Why this task's share is used up (naming the cap), or None while it is not."""
        spent = self.budget.spent()
        for cap, limit in self.limits.items():
            used = float(spent[_SPENT_KEY[cap]])
            if used >= limit:
                return (f"its share of {cap} is used: {_amount(cap, used - self.start[cap])} of "
                        f"{_amount(cap, limit - self.start[cap])} (1/{self.tasks_left} of what was left)")
        return None

    def check(self) -> None:
        """Raise ``ShareSpent`` once the share is used up."""
        reason = self.exhausted()
        if reason is not None:
            raise ShareSpent(reason)

    def candidates_left(self) -> int | None:
        """Candidates this task may still evaluate (None: no candidate cap)."""
        limit = self.limits.get("max_candidates")
        if limit is None:
            return None
        return max(0, int(limit) - int(self.budget.spent()["candidates"]))


def _amount(cap: str, value: float) -> str:
    if cap == "max_wall_s":
        return f"{value:.1f} s"
    if cap == "max_cost_usd":
        return f"${value:.4f}"
    return str(int(round(value)))


@dataclass
class Patience:
    """Generations in a row without a real improvement of the best fitness."""

    patience: int
    best: float | None = None
    stale: int = 0
    generations: int = 0

    def update(self, best: float | None) -> bool:
        """After a generation: note the best fitness now; True once the search has converged."""
        self.generations += 1
        improved = best is not None and (self.best is None or best > self.best + MIN_GAIN * abs(self.best))
        if improved:
            self.best, self.stale = best, 0
        else:
            self.stale += 1
        return self.converged

    @property
    def converged(self) -> bool:
        return self.stale >= self.patience

    def reason(self) -> str:
        best = f"best {self.best:.3g}x vs eager" if self.best is not None else "nothing accepted"
        return (f"converged: no improvement of at least {MIN_GAIN:.0%} in {self.stale} generations "
                f"({best}, {self.generations} generations)")
