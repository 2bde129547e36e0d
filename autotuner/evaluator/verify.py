"""Correctness and integrity of one candidate: fresh inputs, several shapes, poisoned outputs.

For every trial the candidate runs first, on its own copy of freshly drawn inputs, under the
op watch; then the reference runs on the untouched originals in fresh memory and its output
is kept alive until the shape is done, so no later allocation of the candidate can find it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from autotuner.evaluator import isolation
from autotuner.evaluator.compare import compare_outputs, outputs_identical
from autotuner.evaluator.guard import GuardSet, guard_inputs, guard_module, poison_shared_memory
from autotuner.evaluator.inputs import inputs_unchanged, make_candidate, make_inputs, make_reference
from autotuner.evaluator.verdict import ShapeResult, Stage
from autotuner.evaluator.watch import HarnessGuard, OpWatch, trace_kernels
from autotuner.runtime.compile import COSTS as compile_costs
from autotuner.tasks import Shape, Task

# Input law of each trial, cycled: the task's own law most often, the extra laws in between.
LAW_CYCLE = ("task", "signed", "task", "wide", "task")
# Kernels PyTorch launches for allowed ops (fills for zeros/full); anything else foreign is not.
_ALLOWED_FOREIGN = ("FillFunctor", "fill_kernel", "memset")


def allowed_foreign(name: str) -> bool:
    """A kernel PyTorch launches for an allowed op (a fill), whoever asked for it."""
    return any(a in name for a in _ALLOWED_FOREIGN)


def kernel_key(name: str) -> str:
    """A kernel's name as the integrity pass compares it: the profiler's (demangled) name, its
    whitespace collapsed. Both traces come from ``watch.trace_kernels``, so one kernel has one key."""
    return " ".join(name.split())


class Rejection(Exception):
    """A candidate failed a check; carries the stage and a reason a person can read."""

    def __init__(self, stage: Stage, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


def derive_seed(base: int, *labels: Any) -> int:
    digest = hashlib.sha256(f"{base}:{labels}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class VerifyContext:
    task: Task
    model_new: type
    params: dict[str, Any]
    kernel_names: set[str]
    tolerance: dict[str, float]
    base_seed: int
    trials: int
    guard: HarnessGuard
    warnings: list[str] = field(default_factory=list)
    kernels_seen: list[str] = field(default_factory=list)
    guard_bytes: int = 0  # guard bytes each side of every buffer (0: off)
    module_guards: GuardSet | None = None  # the current candidate module's parameters and buffers
    clock: dict[str, float] = field(default_factory=dict)  # seconds of the parts worth knowing (phases_s)
    margin: Any = None  # the one-pass comparison kernel (margin_kernel.MarginKernel), built before the candidate


def _add(clock: dict[str, float], key: str, since: float) -> None:
    clock[key] = clock.get(key, 0.0) + time.perf_counter() - since


def _lap(clock: dict[str, float], key: str, since: float) -> float:
    """``_add``, returning the time now for the next part."""
    now = time.perf_counter()
    clock[key] = clock.get(key, 0.0) + now - since
    return now


def _run_watched(ctx: VerifyContext, model: torch.nn.Module, inputs: list[Any], where: str) -> Any:
    """One forward under the op watch, its inputs and allocations between guard bytes.

    ``inputs`` is replaced in place by the guarded copies the candidate was handed, so the
    caller's later "inputs unchanged" check looks at the memory the candidate really had.
    """
    guards = GuardSet(ctx.guard_bytes)
    inputs[:] = guard_inputs(guards, inputs)
    watch = OpWatch(ctx.task.policy, guards=guards if ctx.guard_bytes else None)
    if ctx.guard_bytes:
        problem = poison_shared_memory()
        if problem and problem not in ctx.warnings:
            ctx.warnings.append(problem)
    processes = isolation.census()
    with watch:
        out = model(*inputs)
    torch.cuda.synchronize()
    spawned = isolation.spawned_since(processes)
    if spawned:
        raise Rejection(Stage.ISOLATION, f"{where}: the candidate tried to leave its sandbox: {spawned}")
    for guard_set in (guards, ctx.module_guards):
        broken = guard_set.check() if guard_set is not None else None
        if broken:
            raise Rejection(Stage.MEMORY, f"{where}: {broken}")
    if watch.forbidden:
        ops = sorted(set(watch.forbidden))
        raise Rejection(
            Stage.INTEGRITY,
            f"{where}: the forward ran PyTorch compute ops {ops[:5]} that the task's "
            f"{ctx.task.policy!r} policy does not allow; the work must be done by the candidate's "
            "own kernels",
        )
    _check_guard(ctx, where)
    return out


def _check_guard(ctx: VerifyContext, where: str) -> None:
    from autotuner.evaluator.isolation import violation_reason

    escaped = violation_reason()
    if escaped:
        raise Rejection(Stage.ISOLATION, f"{where}: {escaped}")
    changes = ctx.guard.changes()
    if changes:
        raise Rejection(Stage.INTEGRITY, f"{where}: the candidate tampered with the harness: {'; '.join(changes[:3])}")


def _own(name: str, own_names: set[str]) -> bool:
    import re

    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", name) for n in own_names)


def check_kernels(ctx: VerifyContext, model: torch.nn.Module, inputs: list[Any]) -> None:
    """At least one of the candidate's own kernels runs, and every kernel is on the current stream."""
    _, trace = trace_kernels(lambda: model(*inputs))
    _check_guard(ctx, "profiled run")
    ctx.kernels_seen = [k.name for k in trace.kernels]
    if trace.current_stream is None:
        ctx.warnings.append("the profiler recorded no kernels; launch checks were skipped")
        return
    own = [k for k in trace.kernels if _own(k.name, ctx.kernel_names)]
    if not own:
        raise Rejection(
            Stage.INTEGRITY,
            "none of the candidate's own kernels ran during the forward "
            f"(declared: {sorted(ctx.kernel_names)[:5] or 'none'}; ran: "
            f"{[k.name[:60] for k in trace.kernels][:5] or 'nothing'})",
        )
    off_stream = [k for k in trace.kernels if k.stream != trace.current_stream]
    if off_stream:
        raise Rejection(
            Stage.INTEGRITY,
            f"kernel {off_stream[0].name[:80]!r} ran on stream {off_stream[0].stream}, not on the "
            f"current stream ({trace.current_stream}): work on a side stream escapes ordering and timing",
        )
    if ctx.task.policy == "strict":
        foreign = [k.name for k in trace.kernels
                   if not _own(k.name, ctx.kernel_names) and not allowed_foreign(k.name)]
        if foreign:
            raise Rejection(
                Stage.INTEGRITY,
                f"kernels that are not the candidate's own ran under the strict policy: {foreign[:3]}",
            )


def verify_shape(ctx: VerifyContext, shape: Shape, profile: bool) -> ShapeResult:
    """Run every trial of one shape; raises Rejection at the first failure."""
    result = ShapeResult(shape=shape.name, hidden=shape.hidden, trials=0, max_abs_err=0.0, max_rel_l2=0.0)
    references: list[Any] = []  # kept alive until the shape is done
    for trial in range(ctx.trials):
        law = LAW_CYCLE[trial % len(LAW_CYCLE)]
        if law != "task" and law not in ctx.task.distributions:
            law = "task"
        where = f"shape {shape.name}{' (hidden)' if shape.hidden else ''}, trial {trial + 1} ({law} inputs)"
        weight_seed = derive_seed(ctx.base_seed, shape.name, trial, "weights")
        input_seed = derive_seed(ctx.base_seed, shape.name, trial, "inputs")
        started = time.perf_counter()
        reference = make_reference(ctx.task, shape, weight_seed)
        started = _lap(ctx.clock, "build_reference", started)
        costs_before = dict(compile_costs)
        candidate, warning = make_candidate(ctx.task, shape, weight_seed, ctx.model_new, ctx.params, reference)
        _add(ctx.clock, "build_candidate", started)
        for part, seconds in compile_costs.items():  # parts of the build: CuPy's import, compiling
            if seconds > costs_before[part]:
                ctx.clock[f"build_candidate_{part}"] = ctx.clock.get(f"build_candidate_{part}", 0.0) + \
                    seconds - costs_before[part]
        if warning and warning not in ctx.warnings:
            ctx.warnings.append(warning)
        ctx.module_guards = GuardSet(ctx.guard_bytes)
        guard_module(ctx.module_guards, candidate)
        # The candidate runs first (twice on the first trial, plus once under the profiler),
        # each time on its own draw; the reference then runs on another draw of the same
        # seed, in memory that did not exist while the candidate ran.
        draw = lambda law=law: make_inputs(ctx.task, shape, input_seed, law)  # noqa: E731
        started = time.perf_counter()
        mine = draw()
        started = _lap(ctx.clock, "draw_inputs", started)
        with torch.no_grad():
            out = _run_watched(ctx, candidate, mine, where)
            _add(ctx.clock, "first_watched_run", started)
            again = _run_watched(ctx, candidate, draw(), where + ", second run") if trial == 0 else None
            if trial == 0 and profile:
                started = time.perf_counter()
                check_kernels(ctx, candidate, draw())
                _add(ctx.clock, "profile", started)  # the profiler's first start sets up CUPTI
            inputs = draw()
            changed = inputs_unchanged(inputs, mine)
            if changed:
                raise Rejection(Stage.CORRECTNESS, f"{where}: the candidate wrote into its input(s) {changed}")
            del mine
            ref = reference(*inputs)
            torch.cuda.synchronize()
            if law != "task" and not _all_finite(ref):
                ctx.warnings.append(f"{where}: reference not finite under {law} inputs; trial used the task's law")
                out = _run_watched(ctx, candidate, draw("task"), where)
                again = _run_watched(ctx, candidate, draw("task"), where + ", second run") if trial == 0 else None
                ref = reference(*draw("task"))
        references.append(ref)
        started = time.perf_counter()
        comparison = compare_outputs(out, ref, ctx.tolerance, ctx.margin)
        _add(ctx.clock, "compare", started)
        if not comparison.ok:
            raise Rejection(Stage.CORRECTNESS, f"{where}: {comparison.reason}")
        result.max_abs_err = max(result.max_abs_err or 0.0, comparison.max_abs_err)
        result.max_rel_l2 = max(result.max_rel_l2 or 0.0, comparison.rel_l2)
        if again is not None and not outputs_identical(out, again):
            moved = compare_outputs(again, out, ctx.tolerance, ctx.margin)
            if not moved.ok:
                raise Rejection(
                    Stage.CORRECTNESS,
                    f"{where}: results moved between two identical runs (a race): {moved.reason}",
                )
            ctx.warnings.append(f"{shape.name}: not bitwise reproducible (within tolerance; atomics?)")
        result.trials += 1
        del out, again, candidate
    result.passed = True
    del references
    torch.cuda.empty_cache()
    return result


def _all_finite(value: Any) -> bool:
    from autotuner.evaluator.compare import flatten_outputs

    return all(
        bool(torch.isfinite(v).all()) for v in flatten_outputs(value)
        if isinstance(v, torch.Tensor) and v.is_floating_point()
    )
