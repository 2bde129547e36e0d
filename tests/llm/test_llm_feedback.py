"""What the operators tell the model about a kernel: every rejection's reason with its hint,
and an accepted kernel's times, roofline and resource report; the kernel to beat."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.evaluator.static_check import check_source, summarize
from autotuner.evaluator.verdict import EvalResult, KernelResources, Stage, Verdict
from autotuner.tasks import load_task
from evolution.llm.feedback import STAGE_HINTS
from evolution.llm.prompts import PromptContext
from evolution.operators import operator
from evolution.proposers.base import Parent, ProposalRequest

from .test_llm_proposer import GOOD_SOURCE, accepted

TASKS = Path(__file__).resolve().parents[2] / "kernels" / "tasks"


@pytest.fixture(scope="module")
def relu_task():
    return load_task(TASKS / "activation" / "relu.py")


def user(task, op: str, *parents: Parent, **kw) -> str:
    messages = operator(op).build_messages(ProposalRequest(task, op, parents, **kw), PromptContext())
    return messages[1]["content"]


def test_every_rejection_stage_has_a_hint():
    assert set(STAGE_HINTS) == {s.value for s in Stage} - {Stage.DONE.value}


def test_a_static_rejection_quotes_the_rule_and_the_module_line(relu_task):
    source = GOOD_SOURCE.replace("import torch\n", "import torch\nimport os\n", 1)
    reason = summarize(check_source(source))
    text = user(relu_task, "fix", Parent(source, result=EvalResult(Verdict.REJECTED, Stage.STATIC, reason)))
    line = next(n for n, text_ in enumerate(source.splitlines(), 1) if text_ == "import os")
    assert reason in text and f"module line {line}: import os" in text
    assert STAGE_HINTS["static_check"] in text


@pytest.mark.parametrize("stage", [Stage.TIMEOUT, Stage.INTEGRITY, Stage.CORRECTNESS, Stage.MEMORY])
def test_other_rejections_carry_the_reason_and_what_it_usually_means(relu_task, stage):
    reason = f"the {stage.value} reason, word for word"
    text = user(relu_task, "fix", Parent(GOOD_SOURCE, result=EvalResult(Verdict.REJECTED, stage, reason)))
    assert f"rejected (stage {stage.value}): {reason}" in text and STAGE_HINTS[stage.value] in text


def test_optimize_carries_the_resource_report(relu_task):
    result = accepted(1.5, 1.25, 0.62)
    result.resources = [KernelResources("relu_f32", registers=18, local_bytes=24, shared_static_bytes=0,
                                        shared_dynamic_bytes=512, max_threads_per_block=1024, block_threads=256)]
    text = user(relu_task, "optimize", Parent(GOOD_SOURCE, result=result, kernel_id=4))
    for must in ("relu_f32: 18 registers per thread", "24 B local memory per thread (spills)",
                 "0 B static + 512 B dynamic shared memory", "256 threads per block", "1.25x vs eager",
                 "1.12x vs torch.compile", "62.0% of the roofline", "spills"):  # fmt: skip
        assert must in text, must


def test_the_kernel_to_beat_names_the_rule_generator(relu_task):
    best = Parent(GOOD_SOURCE, result=accepted(0.8, 1.9, 0.9), kernel_id=12, origin="rules")
    text = user(relu_task, "optimize", best, incumbent=best)
    assert "## The current candidate (kernel 12, written by the rule-based generator)" in text
    assert "## The kernel to beat" in text and "It is the kernel shown above" in text and "1.9x vs eager" in text
    other = Parent(GOOD_SOURCE.replace("relu_f32", "relu_b"), result=accepted(1.0, 1.5, 0.7), kernel_id=13,
                   origin="llm:fake-model")
    text = user(relu_task, "optimize", other, incumbent=best)
    assert "written by a model (fake-model)" in text and "It is the kernel shown above" not in text
    assert "median 0.8 ms, 1.9x vs eager" in text
    assert "## The kernel to beat" in user(relu_task, "translate", incumbent=best)


def test_an_unusable_previous_answer_is_told(relu_task):
    notes = ("your answer was unusable: unparseable response: response truncated at line 31",)
    text = user(relu_task, "translate", notes=notes)
    assert "## Your previous answer could not be used" in text and "truncated at line 31" in text
