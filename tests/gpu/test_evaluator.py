"""The evaluator end to end on a real GPU, with the example candidate."""

from pathlib import Path

import pytest

from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).parents[2]
RELU_TASK = ROOT / "kernels/tasks/activation/relu.py"
RELU = ROOT / "examples/relu_candidate.py"


def test_example_candidate_is_accepted_with_timings_and_provenance():
    result = evaluate(RELU_TASK, RELU, EvalConfig(compile_baseline=False))
    assert result.verdict is Verdict.ACCEPTED, result.reason
    assert len(result.shapes) >= 3 and any(s.hidden for s in result.shapes)
    assert all(s.trials >= 5 for s in result.shapes)
    timed = result.timed
    assert timed.candidate.n_calls >= 50 and timed.eager.n_calls >= 50
    assert result.speedup_eager == pytest.approx(timed.eager.median_ms / timed.candidate.median_ms)
    assert 0 < result.roofline_fraction <= 1 / 0.75
    assert result.provenance.gpu_name and result.provenance.peak_gbps > 100
    assert any("relu" in k for k in result.kernels_seen)


def test_tunable_parameters_reach_the_candidate():
    result = evaluate(RELU_TASK, RELU, EvalConfig(time_candidate=False, baselines=False), params={"BLOCK": 128})
    assert result.accepted, result.reason


def test_roofline_gate_rejects_impossible_times():
    # A slack of 1000 claims the hardware floor is 1000x what was measured: every time is "too fast".
    result = evaluate(RELU_TASK, RELU, EvalConfig(baselines=False, roofline_slack=1000.0))
    assert result.verdict is Verdict.REJECTED and result.stage is Stage.ROOFLINE
    assert "faster than the hardware allows" in result.reason


def test_static_rejection_needs_no_child(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nclass ModelNew: pass\n")
    result = evaluate(RELU_TASK, bad)
    assert result.stage is Stage.STATIC and "os" in result.reason


def test_several_parameter_settings_share_one_child():
    params = [{"BLOCK": 128}, {"BLOCK": 256}, {"BLOCK": 512}]
    from autotuner.evaluator import evaluate_many

    results = evaluate_many(RELU_TASK, RELU, params, EvalConfig(baselines=False))
    assert [r.verdict for r in results] == [Verdict.ACCEPTED] * 3, [r.reason for r in results]
    assert len({r.timed.candidate.median_ms for r in results}) == 3


def test_a_seed_that_compiles_as_it_runs_has_its_modules_built_ahead_from_dry_runs():
    """The decode GEMV seed builds a module per batch size and load path at its first call with
    them; the evaluator records them in dry runs and compiles them side by side before verifying
    (evaluator/ahead.py), so the verified runs compile nothing."""
    from autotuner.evaluator import evaluate_many

    task = ROOT / "kernels/tasks/decode/gemv_qkv_bf16.py"
    seed = ROOT / "kernels/seeds/decode_gemv_bf16.py"
    results = evaluate_many(task, seed, [{}, {"BLOCK": 256}], EvalConfig(baselines=False))
    assert [r.verdict for r in results] == [Verdict.ACCEPTED] * 2, [r.reason for r in results]
    first = results[0].phases_s
    assert first["compile_ahead"] >= first["compile_ahead.dry"] > 0
    assert all(r.phases_s["verify.compile_all"] < 0.05 for r in results), [r.phases_s for r in results]


def test_a_hanging_setting_fails_alone_and_the_rest_still_run():
    from autotuner.evaluator import evaluate_many

    candidate = ROOT / "tests/gpu/candidates/relu_param_hang.py"
    results = evaluate_many(RELU_TASK, candidate, [{"HANG": 0}, {"HANG": 1}, {"HANG": 0}],
                            EvalConfig(baselines=False, time_candidate=False, timeout_s=20))
    assert [r.stage for r in results] == [Stage.DONE, Stage.TIMEOUT, Stage.DONE], [r.reason for r in results]
    assert results[2].accepted


SCRATCH = ROOT / "tests/gpu/candidates/relu_scratch.py"
_HOLD = ("import sys, time, torch\n"
         "free, total = torch.cuda.mem_get_info()\n"
         "held = torch.empty(free - 24 * 2**30, dtype=torch.uint8, device='cuda')\n"
         "print('holding', held.numel() >> 30, flush=True)\n"
         "time.sleep(600)\n")


def test_out_of_memory_caused_by_other_processes_is_a_harness_error_not_a_rejection():
    """40 GiB fits the GPU, not what a process beside it leaves (24 GiB): not the candidate's fault."""
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", _HOLD], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().startswith("holding")
        result = evaluate(RELU_TASK, SCRATCH, EvalConfig(baselines=False, time_candidate=False),
                          params={"SCRATCH_GIB": 40})
    finally:
        holder.kill()
        holder.wait()
    assert result.verdict is Verdict.ERROR and result.stage is Stage.LAUNCH, result.reason
    assert "not the candidate's doing" in result.reason


def test_out_of_memory_the_gpu_could_never_meet_is_the_candidates():
    result = evaluate(RELU_TASK, SCRATCH, EvalConfig(baselines=False, time_candidate=False),
                      params={"SCRATCH_GIB": 400})
    assert result.verdict is Verdict.REJECTED and result.stage is Stage.LAUNCH
    assert "out of memory" in result.reason
