"""The rule-based proposer: the offline default, no LLM.

``RulesProposer().propose(ProposalRequest(task))`` traces the task's reference (ATen level,
on the meta device), lowers composite ops to primitives, plans fusion regions (pointwise
chains; reductions over trailing dims (rows) or over any other block of dims (columns) with
their prologue and epilogue; softmax, norms, losses, scans; decode attention; a transposed or
strided view copied contiguous for the kernels that read it, unless a reduction over a
permute folds into one over its input; max / avg pooling over 1-3 spatial dims, a window
compiled in and sizes read at run time; matrix products (mm, bmm, matmul / einsum forms, mv,
a triu / tril of a product) in the rules' own tiled GEMM kernel, operands read in place;
convolutions, transposed or not, as a direct-convolution kernel under the strict policy; the
epilogue of a GEMM or convolution that stays in cuBLAS / cuDNN under the hybrid policy) and
emits one candidate per structural variant from
the CUDA templates in ``kernels/templates``. An op without a rule ends the translation with a
note naming it and its line: the evaluator's policies let no compute op stay in PyTorch except a
hybrid task's GEMM or convolution, so a partial translation could not pass.

Pipeline modules: ``trace`` -> ``lower`` -> ``plan`` -> ``variants`` -> ``emit`` (with one
``kern_*`` generator per region kind, over ``codegen`` / ``cuda`` helpers).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from autotuner.evaluator.static_check import check_source, summarize
from evolution.proposers.base import Proposal, ProposalBatch, ProposalRequest
from evolution.proposers.seeds import seeds_for
from evolution.proposers.rules.emit import emit_module
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.lower import lower
from evolution.proposers.rules.plan import Plan, make_plan
from evolution.proposers.rules.trace import trace_task
from evolution.proposers.rules.variants import Variant, variants_for

__all__ = ["RulesProposer", "Translation", "translate"]

log = logging.getLogger(__name__)
_trace_lock = threading.Lock()  # tracing sets the task module's size globals


@dataclass
class Translation:
    """What the rules made of a task: the plan (None when untranslatable), notes, candidates."""

    plan: Plan | None
    notes: list[str] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)


def _describe(exc: Unsupported, policy: str) -> str:
    return (f"not translated: {exc}. An op without a rule would have to stay in PyTorch, which the "
            f"task's {policy!r} policy rejects, so no candidate is proposed")


def translate(task, max_variants: int | None = None) -> Translation:  # noqa: ANN001 - a Task
    """Trace, plan and emit every structural variant for ``task``."""
    notes: list[str] = []
    try:
        with _trace_lock:
            graph = trace_task(task, notes)
        # A candidate keeps only the traced branch: wrong at a shape that sets the attribute
        # otherwise (Granite's residual multiplier in the decode tasks' hidden shapes). A task of
        # one shape (KernelBench's) cannot, so it keeps the traced branch, with the note.
        if graph.structural_attrs and len(task.shapes) > 1:
            raise Unsupported(f"the forward branches on attribute(s) {', '.join(graph.structural_attrs)} (another "
                              "value traces other ops) and the task has several shapes, which may set it otherwise; "
                              "a candidate keeps only the traced branch")
        plan = make_plan(lower(graph, task.policy))
    except Unsupported as exc:
        return Translation(None, notes + [_describe(exc, task.policy)])
    except Exception as exc:  # noqa: BLE001 - a rules bug must not end the caller's run
        log.exception("rules proposer failed on task %s", task.name)
        return Translation(None, notes + [f"not translated: the rules proposer failed ({type(exc).__name__}: {exc})"])
    result = Translation(plan, notes)
    if not any(r.kind not in ("mm", "conv") for r in plan.regions):
        result.notes.append("not translated: nothing is left for a kernel of the candidate's own (the task is only a "
                            "GEMM / convolution, or returns an input); the evaluator requires one")
        return result
    torch_regions = [r for r in plan.regions if r.kind in ("mm", "conv")]
    if torch_regions:
        result.notes.append(f"{', '.join(r.kind for r in torch_regions)} stays in PyTorch (cuBLAS / cuDNN, "
                            "allowed by the hybrid policy); its bias and epilogue run in the candidate's kernel")
    variants: list[Variant] = variants_for(plan)[: max_variants or None]
    for variant in variants:
        try:
            source = emit_module(task, plan, variant.choices, variant.defines, variant.space, variant.label,
                                 result.notes)
        except Unsupported as exc:
            result.notes.append(f"variant {variant.label} not emitted: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one broken variant must not hide the others
            log.exception("rules variant %s of %s failed", variant.label, task.name)
            result.notes.append(f"variant {variant.label} not emitted: the rules failed ({type(exc).__name__}: {exc})")
            continue
        violations = check_source(source)
        if violations:
            result.notes.append(f"variant {variant.label} fails the static check: {summarize(violations)}")
            log.warning("rules variant %s of %s fails the static check: %s", variant.label, task.name,
                        summarize(violations))
            continue
        result.proposals.append(Proposal(
            source=source, operator="translate", proposer="rules", params_space=dict(variant.space),
            default_params=dict(variant.defines), variant=variant.label,
            notes="; ".join(result.notes),
        ))
    return result


class RulesProposer:
    """Proposer contract (``evolution.proposers.base``) for the rules: translate only.

    ``translate`` returns one proposal per structural variant, plus the task's hand-written
    seeds from ``kernels/seeds`` (``request.n`` does not cut
    them: they are few and the evaluator decides). Other operators get an empty batch with a
    note: improving a kernel from feedback is the LLM proposer's job, and numeric tuning
    works on a proposal's ``params_space``. Stateless, so safe to share between threads.
    """

    name = "rules"

    def __init__(self, max_variants: int | None = None) -> None:
        self.max_variants = max_variants

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        if request.operator != "translate":
            return ProposalBatch(notes=[f"the rules proposer only translates; operator {request.operator!r} "
                                        "needs another proposer"])
        result = translate(request.task, self.max_variants)
        seeds = seeds_for(request.task)
        notes = result.notes + [f"{len(seeds)} hand-written seed(s) from kernels/seeds"] if seeds else result.notes
        return ProposalBatch(proposals=result.proposals + seeds, notes=notes)
