"""Which operator each island asks for: fix the rejected, optimize and cross the accepted."""

from __future__ import annotations

import random
from collections import Counter

from autotuner.evaluator.verdict import EvalResult, Stage, Verdict
from evolution.planner import MAX_FIX_ATTEMPTS, Planner
from evolution.population import Member, Population


def member(kid: int, speedup: float | None = None, stage: Stage = Stage.DONE, verdict: Verdict | None = None) -> Member:
    if verdict is None:
        verdict = Verdict.ACCEPTED if stage is Stage.DONE else Verdict.REJECTED
    result = EvalResult(verdict, stage, "why", speedup_eager=speedup)
    return Member(kid, f'extern "C" __global__ void k{kid}() {{}}', {}, result)


def test_an_empty_island_translates():
    planner = Planner(Population(islands=2), random.Random(0))
    assert planner.next(0).operator == "translate"


def test_every_kind_of_rejection_goes_back_to_be_fixed_a_limited_number_of_times():
    population = Population(islands=1)
    for kid, stage in enumerate([Stage.STATIC, Stage.TIMEOUT, Stage.INTEGRITY], start=1):
        population.add(member(kid, stage=stage))
    population.add(member(9, stage=Stage.LAUNCH, verdict=Verdict.ERROR))  # the harness's failure: not the kernel's
    planner = Planner(population, random.Random(0))
    plans = [planner.next(0) for _ in range(3 * MAX_FIX_ATTEMPTS + 1)]
    fixed = Counter(p.parents[0].kernel_id for p in plans if p.operator == "fix")
    assert fixed == {1: MAX_FIX_ATTEMPTS, 2: MAX_FIX_ATTEMPTS, 3: MAX_FIX_ATTEMPTS}
    assert plans[0].parents[0].kernel_id == 3  # the newest first
    assert plans[-1].operator == "translate"  # nothing left worth fixing, nothing accepted


def test_accepted_kernels_are_optimized_and_crossed_failures_still_fixed():
    population = Population(islands=1, seed=1)
    for kid, speedup in [(1, 1.1), (2, 1.4), (3, 0.9)]:
        population.add(member(kid, speedup))
    population.add(member(4, stage=Stage.CORRECTNESS))
    planner = Planner(population, random.Random(5))
    ops = Counter()
    for _ in range(200):
        plan = planner.next(0)
        ops[plan.operator] += 1
        if plan.operator == "crossover":
            a, b = plan.parents
            assert a.kernel_id != b.kernel_id and a.result.accepted and b.result.accepted
        if plan.operator == "optimize":
            assert plan.parents[0].result.accepted
    assert ops["fix"] == MAX_FIX_ATTEMPTS and ops["optimize"] > ops["crossover"] > 20
    assert "translate" not in ops


def test_a_full_island_of_working_kernels_keeps_its_failures():
    population = Population(islands=1, capacity=2)
    population.add(member(1, stage=Stage.COMPILE))
    for kid in range(2, 10):
        population.add(member(kid, float(kid)))
    assert population.failed(0).kernel_id == 1
    assert population.best.kernel_id == 9


def test_a_kernel_whose_fix_was_accepted_is_not_sent_back_again():
    population = Population(islands=1)
    population.add(member(1, stage=Stage.COMPILE))
    planner = Planner(population, random.Random(0))
    assert planner.next(0).parents[0].kernel_id == 1
    planner.fixed((1,))
    assert planner.next(0).operator == "translate"
