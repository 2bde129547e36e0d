"""Optuna tuning against a simulated cost surface: finds the optimum, never repeats a setting."""

from autotuner.evaluator.verdict import EvalResult, ShapeResult, Stage, TimingStats, Verdict
from evolution.tuning import params_key, tune

SPACE = {"BLOCK": [64, 128, 256, 512, 1024], "VEC": [1, 2, 4]}


def fake_result(ms: float | None) -> EvalResult:
    if ms is None:
        return EvalResult(Verdict.REJECTED, Stage.CORRECTNESS, "wrong")
    stats = TimingStats(ms, ms, 0, ms, ms, ms, ms, 50)
    return EvalResult(Verdict.ACCEPTED, Stage.DONE, "ok", shapes=[ShapeResult("default", False, 5, candidate=stats)])


def cost(params):
    if params["VEC"] == 4 and params["BLOCK"] == 64:
        return None  # a setting that fails verification
    return 1.0 + abs(params["BLOCK"] - 256) / 256 + (4 - params["VEC"]) * 0.3


def test_finds_the_best_setting_without_repeats():
    seen = []

    def batch(settings):
        seen.extend(params_key(s) for s in settings)
        return [fake_result(cost(s)) for s in settings]

    outcome = tune(SPACE, batch, trials=15, batch=4, seed=1, start={"BLOCK": 256, "VEC": 1})
    assert len(seen) == len(set(seen)) <= 15
    assert seen[0] == params_key({"BLOCK": 256, "VEC": 1})
    assert outcome.best_params == {"BLOCK": 256, "VEC": 4}


def test_known_results_are_told_not_rerun():
    known = {params_key({"BLOCK": b, "VEC": v}): fake_result(cost({"BLOCK": b, "VEC": v}))
             for b in (64, 128, 256, 512, 1024) for v in (1, 2)}
    seen = []

    def batch(settings):
        seen.extend(settings)
        return [fake_result(cost(s)) for s in settings]

    outcome = tune(SPACE, batch, trials=20, known=known, seed=0)
    assert all(s["VEC"] == 4 for s in seen)  # only the unmeasured settings run
    assert len(seen) == 5
    assert outcome.best_params == {"BLOCK": 256, "VEC": 4}
