"""Hand-written correct candidates are ACCEPTED by the full evaluator (GPU), timing and
baselines included; prints the speedups.

Controls for the red-team tasks (control_*.py) are here too: a rejection in the red-team set
means something only if an honest kernel for the same task is accepted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adversarial"))
import redteam_lib as rt  # noqa: E402

from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate  # noqa: E402

CORRECT = rt.correct_candidates()


def _param(cand: rt.Candidate):
    marks = [pytest.mark.slow] if cand.slow else []
    return pytest.param(cand, id=cand.name, marks=marks)


def _fmt(value: float | None, unit: str = "x") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def test_candidate_set_is_complete() -> None:
    tasks = {c.task.relative_to(rt.REPO).as_posix() for c in CORRECT}
    for required in ("activation/relu", "activation/silu", "reduction/sum_dim", "softmax/softmax",
                     "normalization/rmsnorm", "decode/silu_mul_bf16"):
        assert f"kernels/tasks/{required}.py" in tasks, f"no correct candidate for {required}"
    for c in CORRECT:
        assert c.task.is_file(), f"{c.name}: TASK {c.task} does not exist"
        assert not c.expect, f"{c.name}: a correct candidate carries no EXPECT header"


@pytest.mark.gpu
@pytest.mark.parametrize("cand", [_param(c) for c in CORRECT])
def test_accepted(cand: rt.Candidate) -> None:
    config = EvalConfig(time_candidate=True, baselines=True)
    result = evaluate(str(cand.task), str(cand.path), config=config)
    timed = result.timed
    median = timed.candidate.median_ms if timed and timed.candidate else None
    print(f"\n{cand.name} on {cand.task.stem}: {result.verdict.value} at {result.stage.value}; "
          f"median {_fmt(median, ' ms')}, vs eager {_fmt(result.speedup_eager)}, "
          f"vs torch.compile {_fmt(result.speedup_compile)}, roofline {_fmt(result.roofline_fraction, '')}, "
          f"max abs err {result.max_abs_err}; {result.reason}")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    assert result.verdict is Verdict.ACCEPTED, f"{cand.name}: {result.stage.value}: {result.reason}"
    assert result.stage is Stage.DONE
    assert median is not None and median > 0
