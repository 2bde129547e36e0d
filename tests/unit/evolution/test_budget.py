"""Budget caps trip with the cap's name; counters stay exact under threads."""

from __future__ import annotations

import threading

import pytest

from autotuner.errors import BudgetExhausted, ConfigError
from evolution.budget import Budget
from evolution.proposers.base import LLMCall


def call(tokens_in=100, tokens_out=50, cost=0.01, cached=False, error=None) -> LLMCall:
    return LLMCall(model="m", prompt="p", response="r", tokens_in=tokens_in, tokens_out=tokens_out,
                   latency_s=0.1, cost_usd=cost, cached=cached, error=error)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_caps_never_trips():
    budget = Budget()
    for _ in range(100):
        budget.charge(call())
        budget.count_candidate()
    budget.check()
    assert budget.exhausted() is None


@pytest.mark.parametrize(
    ("caps", "spend", "cap"),
    [
        ({"max_tokens": 300}, lambda b: [b.charge(call()) for _ in range(2)], "max_tokens"),
        ({"max_cost_usd": 0.025}, lambda b: [b.charge(call()) for _ in range(3)], "max_cost_usd"),
        ({"max_candidates": 3}, lambda b: b.count_candidate(3), "max_candidates"),
    ],
)
def test_each_cap_trips_naming_itself(caps, spend, cap):
    budget = Budget(**caps)
    budget.check()  # nothing spent yet
    spend(budget)
    with pytest.raises(BudgetExhausted) as info:
        budget.check()
    assert info.value.cap == cap and cap in str(info.value)


def test_wall_time_cap_uses_the_clock():
    clock = FakeClock()
    budget = Budget(max_wall_s=60, clock=clock)
    clock.now += 59.9
    budget.check()
    clock.now += 0.2
    with pytest.raises(BudgetExhausted, match="max_wall_s"):
        budget.check()
    assert budget.spent()["wall_s"] == pytest.approx(60.1)


def test_cached_calls_cost_nothing_and_failed_calls_are_counted():
    budget = Budget(max_tokens=1000)
    budget.charge(call(tokens_in=5000, cached=True))
    budget.charge(call(tokens_in=0, tokens_out=0, cost=0.0, error="timeout"))
    budget.check()
    spent = budget.spent()
    assert spent["llm_calls"] == 2 and spent["llm_calls_cached"] == 1 and spent["llm_calls_failed"] == 1
    assert spent["llm_tokens"] == 0 and spent["llm_usd"] == 0


def test_charging_from_many_threads_is_exact():
    budget = Budget()
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(2000):
            budget.charge(call(tokens_in=3, tokens_out=2, cost=0.5))
            budget.count_candidate()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = budget.spent()
    assert spent["llm_calls"] == 16000 and spent["candidates"] == 16000
    assert (spent["llm_tokens_in"], spent["llm_tokens_out"], spent["llm_tokens"]) == (48000, 32000, 80000)
    assert spent["llm_usd"] == pytest.approx(8000.0)


@pytest.mark.parametrize("bad", [{"max_tokens": -1}, {"max_cost_usd": float("nan")}, {"max_wall_s": "10"}])
def test_invalid_caps_are_config_errors(bad):
    with pytest.raises(ConfigError):
        Budget(**bad)
