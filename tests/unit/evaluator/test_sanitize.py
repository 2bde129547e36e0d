"""The winner gate's handling of compute-sanitizer, with a stand-in sanitizer (no GPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import stat
from pathlib import Path

import pytest

from autotuner.evaluator import sanitize
from autotuner.evaluator.verdict import EvalResult, Stage, Verdict

ROOT = Path(__file__).resolve().parents[3]
TASK = ROOT / "tests" / "adversarial" / "tasks" / "relu.py"
CAND = ROOT / "tests" / "candidates" / "control_relu.py"


def _fake(tmp_path: Path, body: str) -> str:
    """A compute-sanitizer stand-in: sees the same command line, prints what we tell it."""
    path = tmp_path / "compute-sanitizer"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    def use(body: str) -> None:
        monkeypatch.setenv("AUTOTUNER_COMPUTE_SANITIZER", _fake(tmp_path, body))
    return use


def test_finds_an_explicit_sanitizer(fake):
    fake("exit 0\n")
    assert sanitize.find_compute_sanitizer() == os.environ["AUTOTUNER_COMPUTE_SANITIZER"]


def test_clean_tools_pass_and_flags_are_passed(fake, tmp_path):
    log = tmp_path / "args"
    fake(f'echo "$@" >> {log}\necho SANITIZE-CHILD-OK\n'
         'case "$2" in racecheck) echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)";;\n'
         '*) echo "========= ERROR SUMMARY: 0 errors";; esac\nexit 0\n')
    report = sanitize.sanitize(TASK, CAND)
    assert report.passed, report.reason
    assert [r.tool for r in report.runs] == ["memcheck", "racecheck", "initcheck"]
    args = log.read_text()
    assert "--error-exitcode 86" in args and "--target-processes application-only" in args


def test_errors_fail_with_the_first_report(fake):
    fake('echo "========= Invalid __global__ write of size 4 bytes"\necho "=========     at relu_oob+0x90"\n'
         'echo SANITIZE-CHILD-OK\necho "========= ERROR SUMMARY: 1 error"\nexit 86\n')
    report = sanitize.sanitize(TASK, CAND, tools=("memcheck",))
    assert not report.passed
    assert "memcheck" in report.reason and "Invalid __global__ write" in report.reason


def test_a_child_that_never_ran_does_not_pass(fake):
    fake('echo "========= ERROR SUMMARY: 0 errors"\nexit 0\n')
    assert not sanitize.sanitize(TASK, CAND, tools=("initcheck",)).passed


def test_gate_rejects_at_memory_and_leaves_rejections_alone(fake):
    fake('echo "========= ERROR SUMMARY: 2 errors"\nexit 86\n')
    accepted = EvalResult(Verdict.ACCEPTED, Stage.DONE, "correct")
    gated = sanitize.winner_gate(accepted, TASK, CAND)
    assert gated.verdict is Verdict.REJECTED and gated.stage is Stage.MEMORY and "sanitizer" in gated.phases_s
    rejected = EvalResult(Verdict.REJECTED, Stage.CORRECTNESS, "wrong")
    assert sanitize.winner_gate(rejected, TASK, CAND) is rejected


def test_missing_sanitizer_fails_closed(monkeypatch):
    monkeypatch.setenv("AUTOTUNER_COMPUTE_SANITIZER", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sanitize.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(sanitize.Path, "is_file", lambda self: False)
    report = sanitize.sanitize(TASK, CAND)
    assert not report.passed and "not found" in report.reason


def test_the_tools_run_side_by_side(fake):
    """Each tool sleeps 1 s: one after another the gate would take 3 s; side by side about 1."""
    fake('sleep 1\necho SANITIZE-CHILD-OK\n'
         'case "$2" in racecheck) echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)";;\n'
         '*) echo "========= ERROR SUMMARY: 0 errors";; esac\nexit 0\n')
    report = sanitize.sanitize(TASK, CAND)
    assert report.passed, report.reason
    assert [r.tool for r in report.runs] == ["memcheck", "racecheck", "initcheck"]  # reported in order
    assert all(r.seconds >= 1.0 for r in report.runs)
    assert report.seconds < 2.5, f"{report.seconds:.2f} s: the tools ran one after another"


def test_models_are_built_with_filled_empties_and_the_flags_come_back() -> None:
    """A ModelNew declaring ``nn.Parameter(torch.empty(...))`` is cast by a copy that reads every
    element: inside ``filled_empties`` that memory holds NaN, so initcheck has nothing to report
    for the build; outside, allocations are raw again (what the forwards' reads are checked on)."""
    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    with sanitize.filled_empties():
        built = torch.nn.Parameter(torch.empty(64)).to(torch.bfloat16)
        assert torch.isnan(built).all()
        assert torch.are_deterministic_algorithms_enabled()
    after = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.utils.deterministic.fill_uninitialized_memory)
    assert after == before


def test_the_flags_come_back_when_the_build_raises() -> None:
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError), sanitize.filled_empties():
        raise ValueError("a ModelNew whose __init__ fails")
    assert torch.are_deterministic_algorithms_enabled() == before


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_gate_leaves_no_tool_running(tmp_path, monkeypatch):
    """A run cut by a timeout or SIGKILL must not leave compute-sanitizer on the GPU: on the H200
    such leftovers slowed the next measurement by a third."""
    pid_file = tmp_path / "tool.pid"
    monkeypatch.setenv("AUTOTUNER_COMPUTE_SANITIZER", _fake(tmp_path, f'echo $$ > {pid_file}\nexec sleep 60\n'))
    script = ("import sys; from pathlib import Path; from autotuner.evaluator import sanitize; "
              f"sanitize.run_tool(sanitize.find_compute_sanitizer(), 'memcheck', Path('{tmp_path}/job.json'), "
              f"dict(__import__('os').environ), Path('{tmp_path}'), 120)")
    gate = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.is_file() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        tool = int(pid_file.read_text())
        assert _alive(tool)
    finally:
        gate.kill()
        gate.wait()
    deadline = time.monotonic() + 5
    while _alive(tool) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(tool), "the tool outlived the process that started it"


def test_the_wrapper_runs_the_command_unchanged(tmp_path):
    out = subprocess.run(sanitize.dies_with_parent(["/bin/echo", "--tool", "memcheck"]), capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "--tool memcheck"
