"""The run loop on CPU with the simulated evaluator and a fixed proposer."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive import Archive
from autotuner.evaluator.eval_config import EvalConfig
from evolution.budget import Budget
from autotuner.tasks import load_task
from evolution.evalpool import EvalPool
from evolution.loop import SearchConfig, TuneRun
from evolution.proposers.base import Proposal, ProposalBatch
from evolution.simulate import simulated_evaluator

ROOT = Path(__file__).parents[3]
TASK = ROOT / "kernels/tasks/activation/relu.py"
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()


class FixedProposer:
    """Three structural variants, one of them a comment-only copy of another."""

    name = "rules"

    def propose(self, request):
        variants = [EXAMPLE, EXAMPLE.replace("fmaxf(x[i], 0.0f)", "x[i] > 0.0f ? x[i] : 0.0f"),
                    EXAMPLE.replace("if (i < n)", "// same kernel, other comment\n    if (i < n)")]
        return ProposalBatch([Proposal(v, "translate", "rules", {"BLOCK": [64, 128, 256, 512, 1024]},
                                       {"BLOCK": 256}) for v in variants], notes=["nothing left in PyTorch"])


def _run(archive, search, budget, history=(), run_id=None):
    run_id = run_id or archive.start_run({"config": {}, "tasks": [str(TASK)]})
    pool = EvalPool(simulated_evaluator(), EvalConfig(), [0, 1])
    run = TuneRun(archive, run_id, search, {"rules": FixedProposer()}, pool, budget, workdir=Path(archive.url.split("///")[1]).parent / "w")
    run.history = list(history)
    try:
        return run_id, run.run([load_task(TASK)])
    finally:
        pool.close()


def test_seeds_dedupe_tune_and_record_everything(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    run_id, (outcome,) = _run(archive, SearchConfig(tune_trials=4, tune_top=2), Budget())
    history = archive.run_history(run_id)
    assert outcome.verdicts["duplicate"] == 1  # the comment-only copy never reached the evaluator
    assert outcome.candidates == len(history)
    keys = [(h.source_hash, tuple(sorted(h.params.items()))) for h in history]
    assert len(keys) == len(set(keys)), "a setting was evaluated twice"
    assert {h.operator for h in history} >= {"translate", "tune"}
    assert outcome.best_kernel_id is not None and outcome.translated
    archive.close()


def test_budget_stops_the_run_and_resume_repeats_nothing(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    search = SearchConfig(tune_trials=4, tune_top=2)
    run_id, (first,) = _run(archive, search, Budget(max_candidates=3))
    before = archive.run_history(run_id)
    assert len(before) == 3
    _, (second,) = _run(archive, search, Budget(), history=before, run_id=run_id)
    after = archive.run_history(run_id)
    keys = [(h.source_hash, tuple(sorted(h.params.items()))) for h in after]
    assert len(keys) == len(set(keys)), "the resumed run repeated an evaluation"
    assert [h.evaluation_id for h in after[:3]] == [h.evaluation_id for h in before]
    assert first.evaluated == first.candidates == 3
    assert second.candidates == len(after) and second.evaluated == len(after) - 3  # the 3 read back cost nothing
    fresh = Archive.open(f"sqlite:///{tmp_path / 'b.db'}")
    fresh_id, _ = _run(fresh, search, Budget())
    assert len(fresh.run_history(fresh_id)) == len(after)  # killed + resumed == uninterrupted
    archive.close()
    fresh.close()


TASKS = [TASK, ROOT / "kernels/tasks/softmax/softmax.py", ROOT / "kernels/tasks/activation/silu.py"]


def _run_tasks(archive, search, budget, paths, history=(), run_id=None):
    run_id = run_id or archive.start_run({"config": {}, "tasks": [str(p) for p in paths]})
    pool = EvalPool(simulated_evaluator(), EvalConfig(), [0])
    run = TuneRun(archive, run_id, search, {"rules": FixedProposer()}, pool, budget,
                  workdir=Path(archive.url.split("///")[1]).parent / "w")
    run.history = list(history)
    try:
        return run_id, run.run([load_task(p) for p in paths])
    finally:
        pool.close()


def test_tuned_settings_record_the_kernel_they_were_tuned_from(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    run_id, (outcome,) = _run(archive, SearchConfig(tune_trials=4, tune_top=2), Budget())
    history = archive.run_history(run_id)
    default_kernel = {h.source_hash: h.kernel_id for h in history if h.operator == "translate"}
    tuned = [h for h in history if h.operator == "tune"]
    assert tuned, "nothing was tuned"
    for item in tuned:
        assert item.parents == (default_kernel[item.source_hash],)
    assert all(h.parents == () for h in history if h.operator == "translate")
    rows = archive.task_lineage("relu")
    assert sum(len(r.parents) for r in rows) == len(tuned)
    assert outcome.stop_reason == "exhausted: every rule variant evaluated (2), 2 of them tuned"
    archive.close()


def test_each_task_gets_a_fair_share_and_says_why_it_stopped(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    _, outcomes = _run_tasks(archive, SearchConfig(tune_trials=4, tune_top=2), Budget(max_candidates=9), TASKS)
    assert [o.candidates for o in outcomes] == [3, 3, 3]
    assert [o.stop_kind for o in outcomes] == ["share", "share", "budget"]
    assert "its share of max_candidates is used: 3 of 3 (1/3 of what was left)" in outcomes[0].stop_reason
    archive.close()


def test_a_task_left_without_budget_says_so(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    budget = Budget(max_candidates=2)
    budget.count_candidate(2)  # spent before the run's first task (a resumed run's earlier session)
    _, outcomes = _run_tasks(archive, SearchConfig(tune_trials=4), budget, TASKS[:2])
    assert [o.stop_kind for o in outcomes] == ["budget", "not searched"]
    archive.close()


def test_a_resumed_run_skips_the_tasks_it_was_done_with(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    search = SearchConfig(tune_trials=4, tune_top=2)
    run_id, first = _run_tasks(archive, search, Budget(), TASKS[:2])
    before = archive.run_history(run_id)
    assert set(archive.run_tasks_stopped(run_id).values()) == {o.stop_reason for o in first}
    _, again = _run_tasks(archive, search, Budget(), TASKS[:2], history=before, run_id=run_id)
    assert len(archive.run_history(run_id)) == len(before)
    assert [o.stop_reason for o in again] == [o.stop_reason for o in first]
    assert [o.best_kernel_id for o in again] == [o.best_kernel_id for o in first]
    archive.close()


class _OneHarnessError:
    """The simulated evaluator, but the first setting it sees ends in a harness error (as an
    out-of-memory error another process caused does), once."""

    def __init__(self):
        from evolution.simulate import SimulatedEvaluator

        self.inner, self.failed = SimulatedEvaluator(), None

    def device_name(self, gpu):
        return self.inner.device_name(gpu)

    def __call__(self, task, candidate, settings, config):
        from autotuner.evaluator.verdict import EvalResult, Stage, Verdict

        results = self.inner(task, candidate, settings, config)
        if self.failed is None:
            self.failed = dict(settings[0])
            results[0] = EvalResult(Verdict.ERROR, Stage.LAUNCH, "out of memory: 4 GiB free, other processes hold 130",
                                    task_name=task.name, task_hash=task.content_hash)
        return results


def test_a_harness_error_is_kept_and_evaluated_again_on_resume(tmp_path):
    from autotuner.evaluator.verdict import Verdict

    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    search = SearchConfig(tune_trials=0)
    run_id = archive.start_run({"config": {}, "tasks": [str(TASK)]})
    evaluator = _OneHarnessError()
    pool = EvalPool(evaluator, EvalConfig(), [0])
    run = TuneRun(archive, run_id, search, {"rules": FixedProposer()}, pool, Budget(), workdir=tmp_path / "w")
    try:
        run.run([load_task(TASK)])
    finally:
        pool.close()
    before = archive.run_history(run_id)
    errors = [h for h in before if h.result.verdict is Verdict.ERROR]
    assert len(errors) == 1 and errors[0].params == evaluator.failed  # kept in the archive
    done = [c for c in archive.work_claims(run_id) if c.status == "done"]
    assert len(done) == len(before) - 1  # the harness error's claim was given back, not completed
    _, (second,) = _run(archive, search, Budget(), history=before, run_id=run_id)
    after = archive.run_history(run_id)
    again = [h for h in after[len(before):] if h.source_hash == errors[0].source_hash and h.params == evaluator.failed]
    assert len(again) == 1 and again[0].result.verdict is Verdict.ACCEPTED  # evaluated again, once
    assert second.evaluated == 1 and len(after) == len(before) + 1  # and nothing else repeated
    archive.close()


def test_each_phase_of_a_task_search_is_timed(tmp_path):
    """Where a task's time goes (bench suite prints it): the variants and tuning phases take at
    least the evaluator's time for what they evaluated."""
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    run_id = archive.start_run({"config": {}, "tasks": [str(TASK)]})
    pool = EvalPool(simulated_evaluator(delay_s=0.05), EvalConfig(), [0])
    run = TuneRun(archive, run_id, SearchConfig(tune_trials=4, tune_top=1), {"rules": FixedProposer()}, pool, Budget(),
                  workdir=tmp_path / "w")
    try:
        (outcome,) = run.run([load_task(TASK)])
    finally:
        pool.close()
    history = archive.run_history(run_id)
    seeded = sum(1 for h in history if h.operator == "translate")
    tuned = sum(1 for h in history if h.operator == "tune")
    assert {"propose", "variants", "tune"} <= set(outcome.seconds)
    assert outcome.seconds["variants"] >= 0.05 * seeded and outcome.seconds["tune"] >= 0.05 * tuned > 0
    # the search threads' own parts: each batch's wall (inside variants / tune), the archive's claims and records
    assert {"parent.claim", "parent.evaluate", "parent.record"} <= set(outcome.seconds)
    assert outcome.seconds["variants"] + outcome.seconds["tune"] >= outcome.seconds["parent.evaluate"] >= 0.05 * (seeded + tuned)
    archive.close()


def test_a_phase_the_child_spent_once_for_a_batch_counts_once_and_verify_parts_are_kept():
    from autotuner.evaluator.verdict import EvalResult, Stage, Verdict
    from evolution.task_search import batch_phases

    def result(verify):
        return EvalResult(Verdict.ACCEPTED, Stage.DONE, "", phases_s={"setup": 2.0, "baselines": 3.0, "verify": verify,
                                                                      "verify.shape:a": verify,
                                                                      "verify.compare": verify / 5, "cuda_init.x": 1.0})
    assert batch_phases([result(0.5), result(0.25)]) == {"evaluator.setup": 2.0, "evaluator.baselines": 3.0,
                                                         "evaluator.verify": 0.75, "evaluator.verify.compare": pytest.approx(0.15)}
    assert batch_phases([result(0.5)]) == {"evaluator.setup": 2.0, "evaluator.baselines": 3.0, "evaluator.verify": 0.5,
                                           "evaluator.verify.compare": 0.1}


def test_no_task_starts_after_the_start_window_and_the_one_searching_finishes(tmp_path):
    """start_within_s is not a cap: the first task's search runs to its own end although the
    window closes during it; the tasks after it are not searched, and a second run on the same
    archive searches them (what bench suite --start-within does on a machine lent by the minute)."""
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    search = SearchConfig(tune_trials=4, tune_top=2)
    now = [0.0]

    class Clock:  # each reading moves the clock a second: the window closes inside the first search
        def __call__(self):
            now[0] += 1.0
            return now[0]

    budget = Budget(start_within_s=3.0, clock=Clock())
    _, outcomes = _run_tasks(archive, search, budget, TASKS)
    whole = _run_tasks(Archive.open(f"sqlite:///{tmp_path / 'b.db'}"), search, Budget(), TASKS[:1])[1][0]
    assert outcomes[0].stop_kind == "exhausted" and outcomes[0].candidates == whole.candidates
    assert [o.stop_kind for o in outcomes[1:]] == ["not searched", "not searched"]
    assert "no task starts after the run's start window (start_within_s passed" in outcomes[1].stop_reason
    _, again = _run_tasks(archive, search, Budget(), TASKS)
    assert [o.stop_kind for o in again] == ["exhausted"] * 3
    assert again[0].evaluated == 0  # the first task's results were read back, nothing repeated
    archive.close()


def test_the_start_window_must_be_positive():
    import pytest

    from autotuner.errors import ConfigError

    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ConfigError, match="start_within_s"):
            Budget(start_within_s=bad)
    assert Budget(start_within_s=5.0, clock=lambda: 0.0).start_closed() is None
