"""optimize: a faster version of a working candidate, guided by its measurements."""

from __future__ import annotations

from evolution.llm.prompts import (PromptContext, incumbent_section, messages, notes_section, parent_section,
                                   system_prompt, task_section)
from evolution.proposers.base import ProposalRequest

PARENTS = 1


def build_messages(request: ProposalRequest, ctx: PromptContext) -> list[dict[str, str]]:
    parent = request.parents[0]
    return messages(
        system_prompt(request.task, ctx),
        task_section(request.task),
        parent_section(parent, "The current candidate"),
        incumbent_section(request.incumbent, request.parents),
        notes_section(request.notes),
        "## Your job\nWrite a faster version of this candidate that stays correct at every shape. "
        "Read the measurements: far from the roofline on a memory-bound op means the memory "
        "access is the problem (coalescing, vectorized 16-byte loads, fewer passes over the data, "
        "enough blocks in flight); a compute-bound op wants more work per thread, shared-memory "
        "tiling and fewer divisions or transcendental calls. Read the resources: many registers or "
        "any local memory (spills) limit the threads in flight; shared memory per block limits the "
        "blocks per SM. Change the structure when tuning PARAMS cannot close the gap, and expose "
        "the new knobs in PARAMS.",
    )
