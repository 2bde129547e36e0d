"""The parent's process handling, with a fake worker: no GPU needed."""

import os
import sys
import time
from pathlib import Path

import pytest

from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import _crash_reason, _implausible, _run_child, sandbox_spec
from autotuner.evaluator.verdict import EvalResult, ShapeResult, Stage, TimingStats, Verdict

FAKE = (sys.executable, str(Path(__file__).with_name("fake_worker.py")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its parent counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_hang_is_killed_with_its_whole_process_tree(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    data, phase, _, _ = _run_child({"behavior": "hang", "pid_file": str(pid_file)}, EvalConfig(timeout_s=1.0),
                                   tmp_path, command=FAKE)
    assert data == [] and phase.startswith("the candidate ran past its 1 s limit")
    assert time.monotonic() - started < 30
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "the candidate's own child process survived the kill"


def test_segfault_is_classified(tmp_path):
    data, phase, returncode, tail = _run_child({"behavior": "segfault"}, EvalConfig(timeout_s=30), tmp_path, command=FAKE)
    assert data == [] and phase == "candidate"
    assert "SIGSEGV" in _crash_reason(returncode, tail)


def test_exit_without_result_reports_the_log(tmp_path):
    data, _, returncode, tail = _run_child({"behavior": "exit_no_result"}, EvalConfig(timeout_s=30), tmp_path, command=FAKE)
    assert data == []
    reason = _crash_reason(returncode, tail)
    assert "code 1" in reason and "illegal memory access" in reason


def test_result_is_read_back(tmp_path):
    data, phase, returncode, _ = _run_child({"behavior": "ok"}, EvalConfig(timeout_s=30), tmp_path, command=FAKE)
    assert data[0]["reason"] == "fake" and phase == "done" and returncode == 0


def _accepted(n_calls: int = 50, median: float = 1.0, speedup: float = 2.0, checked: int | None = 13) -> EvalResult:
    stats = TimingStats(median, median, 0.0, median * 0.9, median * 1.1, median, median, n_calls, checked)
    eager = TimingStats(2.0, 2.0, 0.0, 2.0, 2.0, 2.0, 2.0, 50)
    shapes = [ShapeResult("default", False, 5, 0.0, 0.0, True, stats, eager), ShapeResult("h", True, 5, 0, 0, True)]
    return EvalResult(Verdict.ACCEPTED, Stage.DONE, "", shapes=shapes, speedup_eager=speedup)


@pytest.mark.parametrize(
    "result, problem",
    [
        (_accepted(), None),
        (_accepted(n_calls=3), "timing implausible"),
        (_accepted(median=float("nan")), "timing implausible"),
        (_accepted(speedup=50.0), "speedup does not match"),
        (_accepted(checked=5), "timed outputs checked"),
        (_accepted(checked=None), "timed outputs checked"),
    ],
)
def test_parent_checks_what_the_child_reports(result, problem):
    found = _implausible(result, EvalConfig(), n_shapes=2)
    assert (found is None) if problem is None else (problem in found)


def test_a_graph_timed_report_needs_no_sample_count():
    """Graph timing checks every copy's output twice (``timing.time_graph``), not a sample."""
    assert _implausible(_accepted(checked=None), EvalConfig(), n_shapes=2, timing_mode="graph") is None


def test_parent_rejects_missing_shapes_and_trials():
    result = _accepted()
    assert "shapes" in _implausible(result, EvalConfig(), n_shapes=3)
    result.shapes[1].trials = 2
    assert "trials" in _implausible(result, EvalConfig(), n_shapes=2)


def test_fork_server_child_runs_the_real_worker_and_reports(tmp_path, monkeypatch):
    import torch

    from autotuner.evaluator.verdict import EvalResult

    root = Path(__file__).parents[3]
    # The cache the sandbox lets the child write (the evaluator's own: AUTOTUNER_CACHE_DIR).
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    spec = sandbox_spec(EvalConfig(timeout_s=60), tmp_path)
    job = {"task_path": str(root / "kernels/tasks/activation/relu.py"),
           "candidate_path": str(root / "examples/relu_candidate.py"), "param_sets": [{}],
           "config": {"timeout_s": 60.0}, "cache_dir": spec["cache_dir"], "seed": 1, "sandbox": spec}
    data, phase, returncode, tail = _run_child(job, EvalConfig(timeout_s=60), tmp_path, command=None)
    assert len(data) == 1, tail
    result = EvalResult.from_json(data[0])
    assert phase == "done" and returncode == 0
    assert not (tmp_path / "job.json").exists(), "the job file (with its seed) must be gone"
    if torch.cuda.is_available():
        assert result.accepted, result.reason
    else:
        assert result.verdict.value == "error" and "NoGPUError" in result.reason
    assert {"child_start", "cuda_init", "sandbox"} <= set(result.phases_s), "the child's start is in its phases"
    assert 0 <= result.phases_s["child_start"] < 60
    log = (tmp_path / "log").read_text()  # the whole log: on a GPU the tail is the evaluation's
    assert any("sandbox: cwd" in line for line in log.splitlines()[:5]), \
        f"the forked worker shut itself in before anything else: {log[:500]}"


def test_fork_server_preload_starts_no_thread_and_no_cuda():
    """What the fork server imports once for every child must be safe to fork: no thread
    running, CUDA not initialized (each child makes its own context)."""
    import subprocess

    from autotuner.evaluator.sandbox import _PRELOAD

    code = (f"import importlib, threading, torch\nfor m in {_PRELOAD!r}: importlib.import_module(m)\n"
            "print(threading.active_count(), torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["1", "False"], out.stderr[-500:]


def test_more_preloaded_modules_are_named_in_the_environment():
    from autotuner.evaluator.sandbox import _PRELOAD, PRELOAD_ENV, preload_modules

    assert preload_modules({}) == _PRELOAD
    assert preload_modules({PRELOAD_ENV: " cupy, torch ,,"}) == _PRELOAD + ["cupy"]


def test_a_loaded_task_is_not_loaded_again(tmp_path, monkeypatch):
    """A run loads each task once and passes it on: the parent evaluates it without reloading the file."""
    from autotuner.evaluator import sandbox
    from autotuner.tasks import load_task

    task = load_task(Path(__file__).parents[3] / "kernels/tasks/activation/relu.py")
    candidate = tmp_path / "candidate.py"
    candidate.write_text("import os\n\nclass ModelNew:\n    pass\n")  # refused by the static check: no GPU needed
    monkeypatch.setattr(sandbox, "load_task", lambda *a, **k: pytest.fail("the task file was loaded again"))
    (result,) = sandbox.evaluate_many(task, candidate, [{}])
    assert result.stage is Stage.STATIC and result.task_hash == task.content_hash and result.task_name == "relu"


def test_the_pool_starts_the_fork_server_before_the_first_candidate(monkeypatch):
    """Its preload (seconds) runs while the search proposes; not for a stand-in evaluator, not
    without a GPU (every evaluation stops before a child), not with the fork server off."""
    from autotuner.evaluator import sandbox
    from autotuner.runtime import device
    from evolution import evalpool

    started = []
    monkeypatch.setattr(sandbox, "_forkserver_context", lambda: started.append(1))
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    evalpool.EvalPool(evalpool.real_evaluator, EvalConfig(), [0]).close()
    assert started == [1]
    evalpool.EvalPool(lambda *a: [], EvalConfig(), [0]).close()
    evalpool.EvalPool(evalpool.real_evaluator, EvalConfig(fork_server=False), [0]).close()
    assert started == [1]
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    evalpool.EvalPool(evalpool.real_evaluator, EvalConfig(), [0]).close()
    assert started == [1]


def test_a_child_that_dies_in_compile_aheads_dry_runs_is_run_again_without_them(monkeypatch):
    """The dry runs (evaluator/ahead.py) run every setting before the first is verified, so a
    hang or crash there ("candidate:I:ahead") blames no setting: the same settings run again
    with compile-ahead off, where a failure is the setting's own."""
    from autotuner.evaluator import sandbox
    from autotuner.tasks import load_task

    root = Path(__file__).parents[3]
    configs = []

    def child(job, config, workdir, command=None):  # noqa: ANN001, ANN202
        configs.append(job["config"]["compile_ahead"])
        if len(configs) == 1:
            return [], "the candidate ran past its 300 s limit [candidate:1:ahead]", -9, ""
        return [{"verdict": "rejected", "stage": "correctness", "reason": "fake"}] * len(job["param_sets"]), "done", 0, ""

    monkeypatch.setattr(sandbox, "_run_child", child)
    monkeypatch.setattr(sandbox, "require_gpu", lambda: None)
    task = load_task(root / "kernels/tasks/activation/relu.py")
    results = sandbox.evaluate_many(task, root / "examples/relu_candidate.py", [{"BLOCK": 128}, {"BLOCK": 256}])
    assert configs == [True, False]
    assert [r.reason for r in results] == ["fake", "fake"]
    # with compile-ahead already off a failure there is blamed as any other: no third try
    configs.clear()
    monkeypatch.setattr(sandbox, "_run_child", lambda job, *a, **k: configs.append(1) or
                        ([], "the candidate ran past its 300 s limit [candidate:0:ahead]", -9, ""))
    results = sandbox.evaluate_many(task, root / "examples/relu_candidate.py", [{}],
                                    EvalConfig(compile_ahead=False))
    assert len(configs) == 1 and results[0].verdict is not Verdict.ACCEPTED
