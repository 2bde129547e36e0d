"""The red team on a GPU: every adversarial candidate is REJECTED at the stage its header
names, with a reason a person can read; with the static check off, the run-time layers
alone still reject it; and a crash, a hang or an illegal address does not take the
evaluator down with it.

Timing is off (faster) except for candidates marked ``# TIME: yes`` (tricks that aim at the
timer or at cached outputs, which only the timing stage can see).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redteam_lib as rt  # noqa: E402

from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate  # noqa: E402
from autotuner.evaluator.sanitize import winner_gate  # noqa: E402

pytestmark = pytest.mark.gpu

ADVERSARIAL = rt.adversarial_candidates()
BY_NAME = {c.name: c for c in ADVERSARIAL}
CONTROL = rt.CORRECT_DIR / "control_relu.py"
CONTROL_TASK = rt.REPO / "tests" / "adversarial" / "tasks" / "relu.py"


def config_for(cand: rt.Candidate, static_check: bool = True) -> EvalConfig:
    return EvalConfig(static_check=static_check, time_candidate=cand.time, baselines=False,
                      **rt.config_overrides(cand))


def _run(cand: rt.Candidate, static_check: bool):
    with rt.EscapeTargets() if cand.secrets else nullcontext() as targets:
        path = targets.candidate(cand.path) if targets else cand.path
        result = evaluate(str(cand.task), str(path), config=config_for(cand, static_check))
        if cand.winner_gate:  # caught only before deploy/export: evaluation, then the sanitizer
            result = winner_gate(result, cand.task, path)
        if targets:
            leaked = rt.EscapeTargets.leaks(json.dumps(result.to_json()))
            assert not leaked, f"{cand.name}: a secret reached the result: {leaked}"
            assert not targets.dropped(), f"{cand.name}: wrote outside its folder: {targets.dropped()}"
    print(f"\n{cand.name} (static_check={static_check}): {result.verdict.value} at "
          f"{result.stage.value}: {result.reason}")
    log = os.environ.get("AUTOTUNER_REDTEAM_LOG")
    if log:  # one JSON line per evaluation, for the red-team table in a closing note
        with open(log, "a") as out:
            out.write(json.dumps({"candidate": cand.name, "trick": cand.trick, "static_check": static_check,
                                  "verdict": result.verdict.value, "stage": result.stage.value,
                                  "reason": result.reason, "wall_s": result.wall_s}) + "\n")
    return result


def _explain(cand: rt.Candidate, result) -> str:
    return (f"{cand.name} [{cand.trick}] -> {result.verdict.value} at {result.stage.value}: "
            f"{result.reason!r}")


@pytest.mark.parametrize("cand", ADVERSARIAL, ids=lambda c: c.name)
def test_rejected(cand: rt.Candidate) -> None:
    result = _run(cand, static_check=True)
    assert result.verdict is Verdict.REJECTED, _explain(cand, result)
    assert result.stage.value in cand.expect, f"expected {sorted(cand.expect)}: " + _explain(cand, result)
    assert rt.reason_matches(result.reason, cand.reason), (
        f"reason should mention one of {cand.reason}: " + _explain(cand, result)
    )


@pytest.mark.parametrize("cand", ADVERSARIAL, ids=lambda c: c.name)
def test_rejected_by_runtime_layers_alone(cand: rt.Candidate) -> None:
    if cand.expect_runtime is None:
        pytest.skip(f"{cand.name}: only the static check can stop this (EXPECT_RUNTIME: n/a)")
    if not cand.static_only:
        pytest.skip(f"{cand.name}: passes the static check, so test_rejected already ran the run-time layers")
    result = _run(cand, static_check=False)
    assert result.verdict is Verdict.REJECTED, _explain(cand, result)
    assert result.stage.value in cand.expect_runtime, (
        f"expected {sorted(cand.expect_runtime)} with the static check off: " + _explain(cand, result)
    )
    assert rt.reason_matches(result.reason, cand.reason_runtime), (
        f"reason should mention one of {cand.reason_runtime}: " + _explain(cand, result)
    )


def _control_accepted(after: str) -> None:
    result = evaluate(str(CONTROL_TASK), str(CONTROL), config=EvalConfig(time_candidate=False, baselines=False))
    assert result.verdict is Verdict.ACCEPTED, (
        f"after {after}, the honest control was {result.verdict.value} at {result.stage.value}: {result.reason}"
    )
    assert result.stage is Stage.DONE


def test_control_accepted() -> None:
    """The red-team task is passable: without this, every rejection above means nothing."""
    _control_accepted("nothing")


@pytest.mark.parametrize("name", ["hang", "illegal_address", "python_crash", "out_of_memory"])
def test_survives_and_next_candidate_is_clean(name: str) -> None:
    cand = BY_NAME[name]
    result = _run(cand, static_check=False)  # static off: python_crash must really crash
    assert result.verdict is Verdict.REJECTED, _explain(cand, result)
    expected = cand.expect_runtime or cand.expect
    assert result.stage.value in expected, _explain(cand, result)
    _control_accepted(name)
