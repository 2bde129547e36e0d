"""The unwatched check on the GPU (evaluator/unwatched.py): with the static check off, the two
watch-detecting red-team candidates are rejected at stage integrity, one for the kernels its
unwatched forward ran, one for timed calls far faster than its captured forward; honest styles
stay accepted, the check having run (no skip noted), or, for kernels on the legacy default
stream that a capture cannot hold, with the skip noted in the result's warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate
from autotuner.evaluator.unwatched import SKIPPED

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).parents[2]
RELU_TASK = ROOT / "tests/adversarial/tasks/relu.py"
RED = ROOT / "tests/adversarial/candidates"
HONEST = ROOT / "tests/candidates"
TIMED = EvalConfig(baselines=False)  # the check runs after the timed calls


def _summary(result) -> str:  # noqa: ANN001
    return f"{result.verdict.value} at {result.stage.value}: {result.reason} (warnings: {result.warnings})"


@pytest.mark.parametrize(("name", "words"), [
    ("watch_detection", "different kernels when not watched"),     # torch.relu in the captured forward
    ("watch_detection_capture", "faster, different path"),          # behaves while captured, slowly
], ids=["watch_detection", "watch_detection_capture"])
def test_watch_detection_is_rejected_with_the_static_check_off(name: str, words: str) -> None:
    result = evaluate(RELU_TASK, RED / f"{name}.py", EvalConfig(static_check=False, baselines=False))
    assert result.verdict is Verdict.REJECTED and result.stage is Stage.INTEGRITY, _summary(result)
    assert words in result.reason, _summary(result)


@pytest.mark.parametrize(("name", "task"), [
    ("control_relu", "relu"),                        # autotuner.runtime (NVRTC) on the current stream
    ("style_cupy_external_stream_with", "relu"),     # CuPy on PyTorch's stream through ExternalStream
    ("style_triton", "relu"),                        # a Triton kernel
    ("control_gemm_relu", "gemm_relu"),              # hybrid: cuBLAS inside the capture, then its own kernel
])
def test_honest_candidates_pass_the_check_that_ran(name: str, task: str) -> None:
    result = evaluate(RELU_TASK.with_name(f"{task}.py"), HONEST / f"{name}.py", TIMED)
    assert result.verdict is Verdict.ACCEPTED, _summary(result)
    assert not [w for w in result.warnings if SKIPPED in w], _summary(result)
    assert "unwatched_check" in result.phases_s


def test_kernels_on_the_legacy_default_stream_skip_the_check_and_say_so() -> None:
    """CuPy's null stream is not the capture stream: the kernel runs at once, the graph is empty."""
    result = evaluate(RELU_TASK, HONEST / "style_cupy_stream_null.py", TIMED)
    assert result.verdict is Verdict.ACCEPTED, _summary(result)
    assert [w for w in result.warnings if SKIPPED in w], _summary(result)


def test_a_graph_timed_task_runs_the_check_too(tmp_path: Path) -> None:
    task = tmp_path / "relu_graph.py"
    task.write_text(RELU_TASK.read_text() + '\nTIMING = "graph"\n')
    result = evaluate(task, HONEST / "control_relu.py", TIMED)
    assert result.verdict is Verdict.ACCEPTED, _summary(result)
    assert not [w for w in result.warnings if SKIPPED in w], _summary(result)
    cheat = evaluate(task, RED / "watch_detection.py", EvalConfig(static_check=False, baselines=False))
    assert cheat.verdict is Verdict.REJECTED and cheat.stage is Stage.INTEGRITY, _summary(cheat)
    assert "different kernels when not watched" in cheat.reason
