"""Evolution operators: one file each, one entry point each.

Every operator module defines ``PARENTS`` (how many parents it needs) and
``build_messages(request: ProposalRequest, ctx: PromptContext) -> list[dict[str, str]]``,
the chat messages that ask a model for a candidate. Add an operator by adding a file and a
line to ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from evolution.llm.prompts import PromptContext
from evolution.operators import crossover, fix, optimize, translate
from evolution.proposers.base import ProposalRequest

BuildMessages = Callable[[ProposalRequest, PromptContext], list[dict[str, str]]]

REGISTRY: dict[str, ModuleType] = {
    "translate": translate,
    "optimize": optimize,
    "crossover": crossover,
    "fix": fix,
}


def operator(name: str) -> ModuleType:
    """The operator module called ``name``; ``KeyError`` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no operator {name!r}; known: {sorted(REGISTRY)}") from None


__all__ = ["REGISTRY", "BuildMessages", "PromptContext", "operator"]
