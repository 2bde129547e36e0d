"""`bench suite`'s figures: candidates per GPU-hour count only what this run evaluated."""

from autotuner.app.suitebench import summarize
from evolution.outcome import TaskOutcome


def test_a_resumed_suite_counts_per_hour_only_the_candidates_it_evaluated():
    outcomes = [TaskOutcome("relu", "activation", translated=True, candidates=20, evaluated=5),
                TaskOutcome("softmax", "softmax", translated=True, candidates=10, evaluated=10)]
    report = summarize(outcomes, wall_s=60.0, gpu="NVIDIA H200")
    assert report.candidates == 30 and report.evaluated == 15
    assert report.per_gpu_hour == 3600 * 15 / 60.0  # not 30: 15 were read back from the archive
    assert [r.evaluated for r in report.rows] == [5, 10]


def test_phase_seconds_add_up_over_the_tasks():
    a = TaskOutcome("relu", "activation", translated=True)
    a.seconds.update({"propose": 0.5, "variants": 3.0, "evaluator.baselines": 2.0})
    b = TaskOutcome("softmax", "softmax", translated=True)
    b.seconds.update({"propose": 0.25, "tune": 4.0, "evaluator.baselines": 1.5})
    report = summarize([a, b], wall_s=10.0, gpu="NVIDIA H200")
    assert report.phase_seconds() == {"propose": 0.75, "variants": 3.0, "evaluator.baselines": 3.5, "tune": 4.0}
    assert report.rows[1].seconds == {"propose": 0.25, "tune": 4.0, "evaluator.baselines": 1.5}


def test_a_run_on_two_gpus_counts_per_gpu_hour():
    outcomes = [TaskOutcome("relu", "activation", translated=True, candidates=20, evaluated=20)]
    one = summarize(outcomes, wall_s=60.0, gpu="NVIDIA H200")
    two = summarize(outcomes, wall_s=60.0, gpu="NVIDIA H200", n_gpus=2)
    assert two.per_gpu_hour == one.per_gpu_hour / 2 == 3600 * 20 / 120.0


def test_a_run_whose_start_window_closed_says_how_many_tasks_it_left():
    from autotuner.app.tuning_run import run_stop_reason
    from evolution.budget import Budget

    ticks = iter([0.0, 100.0, 100.0])
    budget = Budget(start_within_s=60.0, clock=lambda: next(ticks))
    done = TaskOutcome("relu", "activation", translated=True, stop_reason="exhausted: every rule variant evaluated")
    left = [TaskOutcome(n, "softmax", stop_reason="not searched: no task starts after the run's start window")
            for n in ("softmax", "rmsnorm")]
    reason = run_stop_reason("budget", budget, [done, *left])
    assert reason.startswith("the run's start window closed with 2 tasks not searched: start_within_s passed: 100.0 s")
    spent = Budget(max_candidates=0)
    assert run_stop_reason("budget", spent, [done]) == ("the run's budget is spent: max_candidates reached: "
                                                        "0 candidates of 0")
