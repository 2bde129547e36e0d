"""fix: repair a candidate the evaluator rejected, given the stage and the reason."""

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
        parent_section(parent, "A candidate that failed"),
        incumbent_section(request.incumbent, request.parents),
        notes_section(request.notes),
        "## Your job\nFind the cause of the failure above and return the whole corrected module. "
        "A compile error quotes the CUDA line (line numbers count from the start of the CUDA "
        "string); a mismatch at a shape you were not shown usually means a hard-coded size or an "
        "unhandled tail; an integrity rejection means PyTorch computed something your kernels "
        "must compute. Keep what was right, change only what the failure requires.",
    )
