"""A task's fair share of the run's budget, and convergence by patience."""

from __future__ import annotations

import pytest

from autotuner.errors import ShareSpent
from evolution.budget import Budget
from evolution.proposers.base import LLMCall
from evolution.stopping import MIN_GAIN, Patience, TaskShare


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_candidates_are_shared_fairly_and_what_a_task_leaves_goes_to_the_next():
    budget = Budget(max_candidates=10)
    first = TaskShare(budget, tasks_left=3)
    assert first.candidates_left() == 4  # ceil(10 / 3)
    budget.count_candidate(1)  # the first task converged after one candidate
    assert first.exhausted() is None
    second = TaskShare(budget, tasks_left=2)
    assert second.candidates_left() == 5  # ceil(9 / 2): the first task's rest is shared on
    budget.count_candidate(5)
    assert second.candidates_left() == 0
    with pytest.raises(ShareSpent, match=r"share of max_candidates is used: 5 of 5 \(1/2 of what was left\)"):
        second.check()
    assert TaskShare(budget, tasks_left=1).candidates_left() == 4


def test_wall_time_share_of_what_is_left():
    clock = FakeClock()
    budget = Budget(max_wall_s=240, clock=clock)
    share = TaskShare(budget, tasks_left=3)  # 80 s each
    clock.now = 79.0
    assert share.exhausted() is None
    clock.now = 80.5
    assert "max_wall_s" in share.exhausted() and "80.0 s" in share.exhausted()
    assert TaskShare(budget, tasks_left=2).limits["max_wall_s"] == pytest.approx(80.5 + (240 - 80.5) / 2)


def test_tokens_and_cost_are_shared_too():
    budget = Budget(max_tokens=1000, max_cost_usd=1.0)
    share = TaskShare(budget, tasks_left=2)
    budget.charge(LLMCall("m", "p", "r", tokens_in=400, tokens_out=50, latency_s=0.1, cost_usd=0.2))
    assert share.exhausted() is None
    budget.charge(LLMCall("m", "p", "r", tokens_in=40, tokens_out=20, latency_s=0.1, cost_usd=0.01))
    assert "max_tokens" in share.exhausted()


def test_without_caps_a_share_never_runs_out():
    share = TaskShare(Budget(), tasks_left=5)
    assert share.exhausted() is None and share.candidates_left() is None
    share.check()


def test_patience_counts_generations_without_a_real_improvement():
    patience = Patience(3)
    assert not patience.update(None)  # nothing accepted yet: stale 1
    assert not patience.update(1.0)  # first accepted: an improvement
    assert not patience.update(1.0 * (1 + MIN_GAIN / 2))  # noise, not progress: stale 1
    assert not patience.update(1.2)  # improvement: stale 0
    assert not patience.update(1.2)
    assert not patience.update(1.2)
    assert patience.update(1.2)
    assert patience.reason().startswith("converged: no improvement") and "3 generations" in patience.reason()
    assert "7 generations" in patience.reason()


def test_patience_resumes_from_the_best_so_far():
    patience = Patience(2, best=2.0)
    assert not patience.update(1.5)
    assert patience.update(2.0)
