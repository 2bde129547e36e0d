"""The static check (CPU): every trick it is meant to stop is stopped, and nothing else is.

- adversarial candidates whose EXPECT names static_check get at least one violation, with a
  line number and a message containing one of the candidate's REASON words;
- adversarial candidates meant for the run-time layers pass the static check (otherwise the
  red-team run would never reach the layer they test);
- every correct candidate in tests/candidates passes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redteam_lib as rt  # noqa: E402

ADVERSARIAL = rt.adversarial_candidates()
STATIC = [c for c in ADVERSARIAL if c.static_only]
RUNTIME = [c for c in ADVERSARIAL if "static_check" not in c.expect]
CORRECT = rt.correct_candidates()


def _check_source():
    from autotuner.evaluator.static_check import check_source

    return check_source


def _describe(violations) -> str:
    return "; ".join(f"line {v.line}: [{v.rule}] {v.message}" for v in violations) or "none"


def test_red_team_set_is_complete() -> None:
    names = {c.name for c in ADVERSARIAL}
    required = {
        "stale_memory", "pointer_cache", "partial_output", "side_stream", "pytorch_fallback",
        "try_except_fallback", "timer_patching", "fp16_downcast", "return_input", "race", "hang",
        "illegal_address", "inplace_input", "decoy_kernel", "zeros_within_tolerance",
        "shape_hardcoding", "tf32", "out_of_memory", "python_crash", "imports_os",
    }
    assert not required - names, f"missing red-team candidates: {sorted(required - names)}"
    for c in ADVERSARIAL:
        assert c.task.is_file(), f"{c.name}: TASK {c.task} does not exist"
        assert c.expect, f"{c.name}: no EXPECT header"
        assert "done" not in c.expect, f"{c.name}: a red-team candidate must be rejected"
        assert c.reason, f"{c.name}: no REASON header"
        assert c.trick, f"{c.name}: needs a docstring describing the trick"


@pytest.mark.parametrize("cand", STATIC, ids=lambda c: c.name)
def test_static_check_rejects(cand: rt.Candidate) -> None:
    source = cand.path.read_text(encoding="utf-8")
    violations = _check_source()(source)
    assert violations, f"{cand.name}: the static check found nothing ({cand.trick})"
    n_lines = source.count("\n") + 1
    for v in violations:
        assert v.line is None or 1 <= v.line <= n_lines, f"violation line {v.line} out of range"
    text = " ".join(f"{v.rule} {v.message}" for v in violations).lower()
    assert rt.reason_matches(text, cand.reason), (
        f"{cand.name}: no violation mentions any of {cand.reason}: {_describe(violations)}"
    )


@pytest.mark.parametrize("cand", RUNTIME, ids=lambda c: c.name)
def test_runtime_tricks_pass_static_check(cand: rt.Candidate) -> None:
    """These must reach the run-time layer they were written for."""
    violations = _check_source()(cand.path.read_text(encoding="utf-8"))
    assert not violations, f"{cand.name} is meant for {sorted(cand.expect)}: {_describe(violations)}"


@pytest.mark.parametrize("cand", CORRECT, ids=lambda c: c.name)
def test_correct_candidates_pass_static_check(cand: rt.Candidate) -> None:
    violations = _check_source()(cand.path.read_text(encoding="utf-8"))
    assert not violations, f"correct candidate {cand.name} flagged: {_describe(violations)}"


@pytest.mark.parametrize("cand", STATIC, ids=lambda c: c.name)
def test_evaluate_rejects_statically_without_gpu(cand: rt.Candidate) -> None:
    """evaluate() stops these before it needs a GPU: the verdict a user sees, checked on CPU."""
    from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate

    result = evaluate(str(cand.task), str(cand.path), config=EvalConfig(time_candidate=False, baselines=False))
    assert result.verdict is Verdict.REJECTED and result.stage is Stage.STATIC, (
        f"{cand.name}: {result.verdict.value} at {result.stage.value}: {result.reason}"
    )
    assert rt.reason_matches(result.reason, cand.reason), (
        f"{cand.name}: reason should mention one of {cand.reason}: {result.reason!r}"
    )
