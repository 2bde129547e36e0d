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


# -- climbing from the start setting --------------------------------------------------------
WIDE = {"BLOCK": [128, 256, 512, 1024], "ITEMS": [1, 2, 4], "WAVES": [0, 2, 8, 32], "OCC": [0, 100], "VEC": [1, 2, 4]}
WIDE_START = {"BLOCK": 256, "ITEMS": 1, "WAVES": 0, "OCC": 0, "VEC": 4}


def wide_cost(params):
    """Best at BLOCK 1024 and ITEMS 4 (two steps from the start along each), every other key as started."""
    return (1.0 + 0.12 * abs(WIDE["BLOCK"].index(params["BLOCK"]) - 3) + 0.1 * abs(WIDE["ITEMS"].index(params["ITEMS"]) - 2)
            + 0.05 * WIDE["WAVES"].index(params["WAVES"]) + 0.05 * params["OCC"] / 100 + 0.05 * (2 - WIDE["VEC"].index(params["VEC"])))


def _run(space, cost_of, **kwargs):
    seen = []

    def batch(settings):
        seen.extend(settings)
        return [fake_result(cost_of(s)) for s in settings]

    return tune(space, batch, **kwargs), seen


def test_the_first_settings_after_the_start_are_its_neighbours_in_key_order():
    _, seen = _run(WIDE, wide_cost, trials=4, batch=4, start=WIDE_START)
    seen = seen[:4]  # one batch: the start and three steps
    assert seen == [WIDE_START, {**WIDE_START, "BLOCK": 512}, {**WIDE_START, "BLOCK": 128}, {**WIDE_START, "ITEMS": 2}]


def test_improving_steps_are_combined_then_the_best_move_continued():
    _, seen = _run(WIDE, wide_cost, trials=5, batch=4, start=WIDE_START)
    # Round one: the start and three steps; BLOCK 512 (the best) and ITEMS 2 both improved.
    # Round two: both at once, then BLOCK's next step up.
    assert seen[4:6] == [{**WIDE_START, "BLOCK": 512, "ITEMS": 2}, {**WIDE_START, "BLOCK": 1024}]


def test_climbing_reaches_an_optimum_two_steps_away_on_two_keys():
    best = {**WIDE_START, "BLOCK": 1024, "ITEMS": 4}
    outcome, seen = _run(WIDE, wide_cost, trials=12, batch=4, start=WIDE_START)
    assert outcome.best_params == best
    assert len(seen) == 13 and len({params_key(s) for s in seen}) == 13
    # The same budget drawn by TPE alone (random until it has 10 results) mostly misses it.
    hits = sum(_run(WIDE, wide_cost, trials=12, batch=4, start=WIDE_START, seed=s, climb=False)[0].best_params == best
               for s in range(10))
    assert hits <= 3


def test_a_start_with_defines_the_space_does_not_search_still_climbs():
    start = {**WIDE_START, "HINTS": 1}  # a fixed define, not searched
    _, seen = _run(WIDE, wide_cost, trials=3, batch=3, start=start)
    assert seen[1:3] == [{**WIDE_START, "BLOCK": 512}, {**WIDE_START, "BLOCK": 128}]


def test_a_resumed_climb_measures_what_the_uninterrupted_one_did():
    _, whole = _run(WIDE, wide_cost, trials=8, batch=4, start=WIDE_START)
    known = {params_key(s): fake_result(wide_cost(s)) for s in whole[:4]}  # killed after one batch
    _, rest = _run(WIDE, wide_cost, trials=8, batch=4, start=WIDE_START, known=known)
    assert [params_key(s) for s in whole[4:]] == [params_key(s) for s in rest]


def test_a_failed_setting_is_not_climbed_from():
    def cost_of(params):
        return None if params["BLOCK"] == 512 else wide_cost(params)  # the best step fails verification

    outcome, seen = _run(WIDE, cost_of, trials=6, batch=3, start=WIDE_START)
    assert {**WIDE_START, "BLOCK": 1024} not in seen  # nothing climbs on from a failure
    assert outcome.best_params != {**WIDE_START, "BLOCK": 512}
