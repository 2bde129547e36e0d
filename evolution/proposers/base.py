"""The proposer contract, shared by the rule-based and the LLM proposers.

A proposer receives a ``ProposalRequest`` (which operator, for which task, with which parents
and feedback) and returns zero or more ``Proposal`` objects, each a complete candidate module
source in the candidate format (see README, "Candidate format"). Proposers never evaluate:
the evaluator decides. A proposer that cannot produce anything returns an empty list and says
why in ``ProposalBatch.notes``; it raises only ``ProposerError`` subclasses (for example an
unreachable LLM endpoint), never a third-party exception. Implementations must be safe to
call from several threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task

OPERATORS = ("translate", "optimize", "crossover", "fix", "tune")


@dataclass(frozen=True)
class Parent:
    """A kernel the operator starts from, with what the evaluator said about it."""

    source: str
    params: dict[str, Any] = field(default_factory=dict)
    result: EvalResult | None = None
    kernel_id: int | None = None
    origin: str = ""  # who proposed it: "rules", "llm:<model>" ("": unknown)


@dataclass(frozen=True)
class ProposalRequest:
    task: Task
    operator: str = "translate"  # one of OPERATORS
    parents: tuple[Parent, ...] = ()
    examples: tuple[str, ...] = ()  # sources of good kernels for related tasks (from the archive)
    n: int = 1  # how many proposals are wanted (a proposer may return fewer)
    incumbent: Parent | None = None  # the fastest verified kernel of the task so far: the one to beat
    notes: tuple[str, ...] = ()  # why the previous answer could not be used (unparseable, cut off, a copy)


@dataclass(frozen=True)
class LLMCall:
    """What one model call cost; recorded in the archive's llm_calls table."""

    model: str
    prompt: str
    response: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    cost_usd: float
    cached: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Proposal:
    source: str  # the candidate module, complete
    operator: str
    proposer: str  # "rules" or "llm:<model>"
    params_space: dict[str, list] = field(default_factory=dict)  # tunables and their choices
    default_params: dict[str, Any] = field(default_factory=dict)
    parents: tuple[int, ...] = ()  # archive kernel ids
    variant: str = ""  # structural variant, e.g. "row-block/vec4/two-pass"
    notes: str = ""  # what stayed in PyTorch, what the model said, ...
    llm_call: LLMCall | None = None


@dataclass
class ProposalBatch:
    proposals: list[Proposal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "op aten.cumprod not translated"
    llm_calls: list[LLMCall] = field(default_factory=list)


@runtime_checkable
class Proposer(Protocol):
    name: str

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Candidates for ``request``; see the module docstring for the contract."""
        ...
