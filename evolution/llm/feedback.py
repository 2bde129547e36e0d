"""What the evaluator said about a kernel, in words a model can act on.

A rejected kernel is shown with its stage and reason, quoted as the evaluator wrote them
(the static rule and its line, the compiler's errors with the offending lines, the
mismatch: shape, input law, how many elements, where and by how much; the integrity
finding; the timeout), plus what that stage usually means. An accepted one is shown with
its times against PyTorch eager and torch.compile, the roofline, and the resource report
(registers, local memory, shared memory per kernel). Hidden shapes are named only as the
evaluator names them (never their sizes).
"""

from __future__ import annotations

import re

from autotuner.candidate import cuda_sources
from autotuner.evaluator.verdict import EvalResult, KernelResources, ShapeResult, Stage, TimingStats

# What a rejection at each stage usually means, and where to look (shown under the reason).
STAGE_HINTS: dict[str, str] = {
    Stage.STATIC.value: "the source was refused before it ran: remove the construct the rule names (the line is "
                        "quoted) and keep to the rules above",
    Stage.COMPILE.value: "NVRTC could not compile the CUDA: the line numbers count from the start of the CUDA "
                         "string (quoted where found); or the Python module failed to import",
    Stage.LAUNCH.value: "the forward raised: argument count or types not matching the kernel signature, a grid or "
                        "block out of range, out of memory, or an illegal address",
    Stage.TIMEOUT.value: "it ran past its time limit: a hang (a loop that never ends, __syncthreads() in a branch "
                         "not every thread takes, a zero stride) or far too little parallelism",
    Stage.CRASH.value: "the process died (an illegal address or an abort): check every index against its bound, "
                       "at tails and at shapes you were not shown",
    Stage.INTEGRITY.value: "the work was not all done by your own kernels on the current stream: PyTorch computed "
                           "part of it, none of your kernels ran, or a kernel ran on another stream",
    Stage.ISOLATION.value: "it tried to leave the sandbox (files, network, processes): a candidate only computes",
    Stage.MEMORY.value: "it read or wrote outside its buffers: bound every access, at tails and at shapes you were "
                        "not shown",
    Stage.CORRECTNESS.value: "wrong values: the reason says at which shape and input law, how many elements, where "
                             "the worst one is and by how much. NaN means an output element was never written; a "
                             "hidden shape failing means a hard-coded size or an unhandled tail; 'signed' or 'wide' "
                             "inputs failing means a shortcut that holds only for the task's own inputs",
    Stage.TIMING.value: "the outputs computed while it was timed were wrong: no caching of results across calls",
    Stage.ROOFLINE.value: "it was timed faster than the hardware can move the data: the timed call did not do the "
                          "whole computation",
}


def feedback_section(result: EvalResult | None, source: str = "") -> str:
    """What the evaluator said about a candidate, for the model to act on."""
    if result is None:
        return "Not evaluated yet."
    verdict, stage = _value(result.verdict), _value(result.stage)
    lines = [f"Verdict: {verdict} (stage {stage}): {result.reason}"]
    if stage == Stage.COMPILE.value and source:
        lines += _quoted_compile_lines(result.reason, source)
    if stage == Stage.STATIC.value and source:
        lines += _quoted_python_lines(result.reason, source)
    if not result.accepted and stage in STAGE_HINTS:
        lines.append(f"What this usually means: {STAGE_HINTS[stage]}.")
    lines += _measurements(result)
    if result.resources:
        lines.append("Resources (per kernel, from the compiler): " + "; ".join(resource_text(r) for r in result.resources))
    if result.compile_ms is not None:
        lines.append(f"Compile time: {result.compile_ms:.0f} ms")
    for warning in result.warnings[:5]:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)


def measurement_summary(result: EvalResult) -> str:
    """One line: time, speedups against eager and torch.compile, roofline fraction."""
    timed = result.timed
    parts = [f"median {timed.candidate.median_ms:.4g} ms"] if timed is not None and timed.candidate else []
    parts += _speed(result)
    return ", ".join(parts) or "no timing"


def resource_text(r: KernelResources) -> str:
    spills = f"{r.local_bytes} B local memory per thread (spills)" if r.local_bytes else "no local memory (no spills)"
    shared = f"{r.shared_static_bytes} B static + {r.shared_dynamic_bytes} B dynamic shared memory per block"
    block = f", launched with {r.block_threads} threads per block" if r.block_threads else ""
    limit = f" (at most {r.max_threads_per_block} at this register count)" if r.max_threads_per_block else ""
    return f"{r.name}: {r.registers} registers per thread, {spills}, {shared}{block}{limit}"


def _value(enum_or_text: object) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


def _measurements(result: EvalResult) -> list[str]:
    lines = []
    timed = result.timed
    if timed is not None:
        lines.append(f"Timed shape {timed.shape!r}: candidate {_ms(timed.candidate)}; "
                     f"PyTorch eager {_ms(timed.eager)}; torch.compile {_ms(timed.compiled)}")  # fmt: skip
        if timed.roofline_ms is not None:
            moved = f"{timed.bytes_moved:,} bytes" if timed.bytes_moved else "?"
            flops = f", {timed.flops:,} FLOPs" if timed.flops else ""
            lines.append(f"Roofline floor {timed.roofline_ms:.4g} ms ({moved}{flops})")
    speed = _speed(result)
    if speed:
        lines.append("Speed: " + ", ".join(speed))
    if result.max_abs_err is not None:
        lines.append(f"Max abs error: {result.max_abs_err:.3g}")
    if result.shapes:
        lines.append("Shapes checked: " + "; ".join(_shape_result(s) for s in result.shapes))
    return lines


def _speed(result: EvalResult) -> list[str]:
    speed = []
    if result.speedup_eager is not None:
        speed.append(f"{result.speedup_eager:.3g}x vs eager")
    if result.speedup_compile is not None:
        speed.append(f"{result.speedup_compile:.3g}x vs torch.compile")
    if result.roofline_fraction is not None:
        speed.append(f"{100 * result.roofline_fraction:.1f}% of the roofline")
    return speed


def _ms(stats: TimingStats | None) -> str:
    if stats is None:
        return "n/a"
    return f"median {stats.median_ms:.4g} ms (p10 {stats.p10_ms:.4g}, p90 {stats.p90_ms:.4g}, {stats.n_calls} calls)"


def _shape_result(s: ShapeResult) -> str:
    name = f"{s.shape} (hidden)" if s.hidden else s.shape
    status = "ok" if s.passed else "FAILED"
    err = f", max abs err {s.max_abs_err:.3g}" if s.max_abs_err is not None else ""
    l2 = f", rel L2 {s.max_rel_l2:.3g}" if s.max_rel_l2 is not None else ""
    return f"{name} {status}{err}{l2}"


def _quoted_compile_lines(reason: str, source: str) -> list[str]:
    """Quote the CUDA lines the compiler names (its line numbers count in the CUDA string)."""
    sources = cuda_sources(source)
    if len(sources) != 1:
        return []
    cuda = sources[0].splitlines()
    quoted = []
    for number in dict.fromkeys(int(n) for n in re.findall(r"\bline (\d+)", reason)):
        if 1 <= number <= len(cuda):
            quoted.append(f"  CUDA line {number}: {cuda[number - 1].strip()}")
    return quoted[:5]


def _quoted_python_lines(reason: str, source: str) -> list[str]:
    """Quote the module lines the static check names (``line N: ... [rule]``)."""
    lines = source.splitlines()
    quoted = []
    for number in dict.fromkeys(int(n) for n in re.findall(r"\bline (\d+):", reason)):
        if 1 <= number <= len(lines):
            quoted.append(f"  module line {number}: {lines[number - 1].strip()}")
    return quoted[:5]
