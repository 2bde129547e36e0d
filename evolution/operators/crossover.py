"""crossover: one candidate combining the strengths of two accepted parents."""

from __future__ import annotations

from evolution.llm.prompts import (PromptContext, incumbent_section, messages, notes_section, parent_section,
                                   system_prompt, task_section)
from evolution.proposers.base import ProposalRequest

PARENTS = 2


def build_messages(request: ProposalRequest, ctx: PromptContext) -> list[dict[str, str]]:
    first, second = request.parents[0], request.parents[1]
    return messages(
        system_prompt(request.task, ctx),
        task_section(request.task),
        parent_section(first, "Parent A"),
        parent_section(second, "Parent B"),
        incumbent_section(request.incumbent, request.parents),
        notes_section(request.notes),
        "## Your job\nWrite one candidate that combines the best ideas of parent A and parent B "
        "(compare their timings and how close each is to the roofline: take the memory access of "
        "the faster one, the parallel decomposition or fusion that the other does better). It must "
        "be correct at every shape and faster than both.",
    )
