"""Trust on a GPU: honest styles pass the winner gate, and its cost is printed; the sandbox
layers are reported in every result's provenance."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adversarial"))
import redteam_lib as rt  # noqa: E402

from autotuner.evaluator import EvalConfig, Verdict, evaluate  # noqa: E402
from autotuner.evaluator.sanitize import find_compute_sanitizer, sanitize  # noqa: E402

pytestmark = pytest.mark.gpu
CONTROL = rt.CORRECT_DIR / "control_relu.py"
TASK = rt.REPO / "tests" / "adversarial" / "tasks" / "relu.py"


def test_compute_sanitizer_is_found():
    assert find_compute_sanitizer(), "compute-sanitizer must be on PATH or under the CUDA toolkit"


@pytest.mark.parametrize("name", ["control_relu", "style_cupy_external_stream_with", "style_triton"])
def test_honest_kernel_passes_the_winner_gate(name):
    report = sanitize(TASK, rt.CORRECT_DIR / f"{name}.py")
    print(f"\n{name}: {report.reason}; " + ", ".join(f"{r.tool} {r.seconds:.1f} s" for r in report.runs))
    assert report.passed, report.reason


def test_result_records_sandbox_and_guard_cost():
    result = evaluate(TASK, CONTROL, config=EvalConfig(time_candidate=False, baselines=False))
    assert result.verdict is Verdict.ACCEPTED, result.reason
    layers = result.provenance.sandbox
    print(f"\nsandbox: {layers}\nphases: {result.phases_s}")
    assert "network" in layers and "cwd" in layers
    assert result.phases_s.get("guard_bytes", 0) > 0


def test_guards_off_still_accepts():
    result = evaluate(TASK, CONTROL, config=EvalConfig(time_candidate=False, baselines=False, guard_bytes=0))
    assert result.verdict is Verdict.ACCEPTED, result.reason
