"""translate: a first candidate for a task, from the reference alone (and related examples)."""

from __future__ import annotations

from evolution.llm.prompts import (PromptContext, examples_section, incumbent_section, messages, notes_section,
                                   system_prompt, task_section)
from evolution.proposers.base import ProposalRequest

PARENTS = 0  # how many parents the operator needs


def build_messages(request: ProposalRequest, ctx: PromptContext) -> list[dict[str, str]]:
    task = request.task
    return messages(
        system_prompt(task, ctx),
        task_section(task),
        examples_section(request.examples, ctx.max_example_chars),
        incumbent_section(request.incumbent),
        notes_section(request.notes),
        "## Your job\nWrite a candidate module whose ModelNew computes exactly what Model computes, "
        "with your own CUDA kernels, as fast as you can make it on this GPU. Fuse everything the "
        "forward does into as few kernels as possible, use coalesced (ideally vectorized) memory "
        "access, and keep it correct for every shape.",
    )
