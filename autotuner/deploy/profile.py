"""Where a decode step's time goes: GPU kernels grouped by what they are, against the step time.

A CUDA-graph step costs its kernels' device time plus the gaps between them (one graph node
launches after the one before drains). The profile runs the same static-shape step without
the graph under the CUDA profiler, so each kernel is seen; ``busy_ms`` is their sum per step
and ``graph_ms`` the measured graph step, so ``graph_ms - busy_ms`` is what the launches
cost. GEMM kernels are compared with the weight bytes they must read; on the fused path each
slot kernel with the bytes its slots must read a step (``slot_traffic``: the weights, and the
KV cache for attention), so every kernel gets its bandwidth against the copy bandwidth.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from autotuner.deploy.generate import GraphDecoder, prefill, static_step
from autotuner.deploy.model import Transformer
from autotuner.deploy.slots import FUSED_SLOTS

_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GEMM_MARKERS = ("nvjet", "gemm", "gemv", "cutlass", "xmma", "splitk", "cublas", "matmul")


@dataclass(frozen=True)
class KernelTime:
    name: str
    kind: str  # gemm | slot | other
    calls_per_step: float
    us_per_step: float
    bytes_per_step: int = 0  # what its slots must read a step (0: not known)

    def gbps(self) -> float | None:
        return self.bytes_per_step / (self.us_per_step * 1e3) if self.bytes_per_step and self.us_per_step else None


@dataclass(frozen=True)
class StepShare:
    """One slot's (or unlabeled kernel's) part of a graph step, per step: ``step_us`` is the time
    its kernels' ends moved the step's latest end on (the critical-path share: the shares sum to
    the step), ``busy_us`` their device time (start to end, prologue waits included)."""

    name: str
    calls_per_step: float
    step_us: float
    busy_us: float


@dataclass
class DecodeProfile:
    model: str
    prompt_len: int
    steps: int
    graph_ms: float  # one CUDA-graph step, measured
    busy_ms: float  # kernels' device time per step (no graph)
    kernels_per_step: float
    weight_bytes: int
    kernels: list[KernelTime] = field(default_factory=list)
    # the fused path's slots, each with the device time of the kernels launched inside its call
    # (the O and down projections share one kernel, which ``kernels`` cannot split)
    slots: list[KernelTime] = field(default_factory=list)
    # the fused path's CUDA-graph step itself, profiled (kernels overlap there under PDL): what
    # each slot adds to the step, see ``step_shares``; graph_profiled_ms is that step's length
    graph_profiled_ms: float = 0.0
    shares: list[StepShare] = field(default_factory=list)

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for k in self.kernels:
            out[k.kind] += k.us_per_step / 1e3
        return dict(out)


# Library kernels whose names are plain identifiers too (cuBLAS's nvjet, CUTLASS, xmma).
_VENDOR_PREFIXES = ("nvjet", "cutlass", "cublas", "sm80_", "sm90_", "sm100_", "ampere_", "hopper_")


def _bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def fused_slot_bytes(model: Transformer, kv_len: int) -> dict[str, int]:
    """Bytes each fused slot must read in one decode step: its weights over all layers; attention
    reads ``kv_len`` positions of both caches per layer."""
    cfg, layers = model.cfg, list(model.layers)
    head = model.tok_embeddings.weight if model.output is None else model.output.weight
    kv = 2 * model.batch * cfg.num_kv_heads * kv_len * cfg.head_dim * head.element_size()
    return {
        "qkv_rope_append": sum(_bytes(l.attention.wqkv.weight, l.attention.wqkv.bias, l.attention_norm) for l in layers),
        "attention_decode": kv * len(layers),
        "o_residual": sum(_bytes(l.attention.wo.weight) for l in layers),
        "attention_o_residual": kv * len(layers) + sum(_bytes(l.attention.wo.weight) for l in layers),
        "gate_up_silu": sum(_bytes(l.feed_forward.w_gate_up.weight, l.ffn_norm) for l in layers),
        "down_residual": sum(_bytes(l.feed_forward.w_down.weight) for l in layers),
        "lm_head_argmax": _bytes(head, model.norm),
    }


def slot_traffic(model: Transformer, kv_len: int) -> dict[str, int]:
    """Kernel name -> bytes a step, for the kernels of the bound fused slots (the names their
    modules declare; one kernel serving two slots, as the O and down projections do, sums them)."""
    from autotuner.runtime.signature import kernel_names

    need = fused_slot_bytes(model, kv_len)
    # the fused attention + O kernel replaces two slots' kernels where bound (they share a source)
    idle = ("attention_decode", "o_residual") if model.slots.bound("attention_o_residual") else ("attention_o_residual",)
    out: dict[str, int] = defaultdict(int)
    for slot, nbytes in need.items():
        if slot in idle:
            continue
        binding = model.slots.bindings.get(slot)
        forward = getattr(binding.model_new, "forward", None) if binding is not None and binding.bound else None
        source = getattr(forward, "__globals__", {}).get("SOURCE")  # the candidate module's CUDA source
        if not isinstance(source, str):
            continue
        for name in kernel_names(source):
            if not name.startswith("copy_"):  # helpers the functional forms use, not the step
                out[name] += nbytes
    return dict(out)


SLOT_RANGE = "slot:"  # the profiler range each fused slot's call runs in while profiled


@contextmanager
def slot_ranges(slots: Any, names: tuple[str, ...], log: list[tuple[str | None, str]] | None = None) -> Iterator[None]:
    """Each call of the named slot methods inside a profiler range ``slot:<name>``; with ``log``,
    every kernel launched through the runtime meanwhile is appended to it as (the slot whose call
    launched it or None, kernel name), in launch order. The instance's own methods back after."""
    from torch.profiler import record_function

    from autotuner.runtime import usage

    current: list[str | None] = [None]

    def ranged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            outer, current[0] = current[0], name
            try:
                with record_function(SLOT_RANGE + name):
                    return method(*args, **kwargs)
            finally:
                current[0] = outer
        return call

    for name in names:
        setattr(slots, name, ranged(name, getattr(slots, name)))
    watching = usage.watch_launches(lambda kernel: log.append((current[0], kernel))) if log is not None else nullcontext()
    try:
        with watching:
            yield
    finally:
        for name in names:
            vars(slots).pop(name, None)


def _is_device_event(evt: Any) -> bool:
    return str(getattr(evt, "device_type", "")).endswith("CUDA")


def _device_us(evt: Any) -> float:
    """A kernel event's own device time in µs (the same field ``key_averages`` is read by above)."""
    return float(getattr(evt, "self_device_time_total", 0.0) or 0.0)


def _start(evt: Any) -> float:
    span = getattr(evt, "time_range", None)
    return float(span.start) if span is not None else 0.0


def slot_times(events: Iterable[Any], log: list[tuple[str | None, str]], steps: int,
               slot_bytes: dict[str, int]) -> list[KernelTime]:
    """Per fused slot, the device time of the kernels its calls launched: the profiler's kernel
    events in start order, the k-th of a name matched with the k-th launch of that name in
    ``log`` (``slot_ranges``). One stream runs them in launch order, so the match is exact, and it
    needs no link between a driver-API launch and the host range around it (the profiler left
    those unlinked: a per-slot table of near-zero times on the H200, 2026-12-02). Kernels that
    launched outside the runtime (PyTorch's own) are in no slot's time."""
    from collections import deque

    owners: dict[str, deque[str | None]] = defaultdict(deque)
    for slot, kernel in log:
        owners[kernel].append(slot)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    kernels = sorted((e for e in events if _is_device_event(e)), key=_start)
    for evt in kernels:
        queue = owners.get(str(getattr(evt, "name", "")))
        if not queue:
            continue
        slot = queue.popleft()
        if slot is not None:
            totals[slot][0] += 1
            totals[slot][1] += _device_us(evt)
    found = [KernelTime(slot, "slot", n / steps, us / steps, slot_bytes.get(slot, 0))
             for slot, (n, us) in totals.items() if us > 0]
    return sorted(found, key=lambda k: -k.us_per_step)


def step_shares(events: Iterable[Any], step_log: list[tuple[str | None, str]], steps: int) -> tuple[float, list[StepShare]]:
    """(ms a step, the shares) of ``steps`` profiled graph replays. Under programmatic dependent
    launch a kernel starts while the one before drains, so device times overlap and do not add up
    to the step; walking the kernels in start order, each is charged the time by which its end
    passes the latest end so far (its gap and run past what was already done). ``step_log``: one
    eager step's runtime launches (slot, kernel) in order; the graph replays the same sequence,
    so the k-th kernel of a name is the (k mod n)-th launch of that name there. Kernels the
    runtime did not launch (PyTorch's, the token and position copies) are charged by name."""
    order: dict[str, list[str | None]] = defaultdict(list)
    for slot, kernel in step_log:
        order[kernel].append(slot)
    seen: dict[str, int] = defaultdict(int)
    kernels = sorted((e for e in events if _is_device_event(e) and getattr(e, "time_range", None) is not None),
                     key=_start)
    if not kernels or steps <= 0:
        return 0.0, []
    first = float(kernels[0].time_range.start)
    latest = first
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # calls, step, busy
    for evt in kernels:
        name = str(getattr(evt, "name", ""))
        slots_of = order.get(name)
        if slots_of:
            owner = slots_of[seen[name] % len(slots_of)] or name
            seen[name] += 1
        else:
            owner = name
        start, end = float(evt.time_range.start), float(evt.time_range.end)
        row = totals[owner]
        row[0] += 1
        row[1] += max(0.0, end - latest)
        row[2] += end - start
        latest = max(latest, end)
    shares = [StepShare(owner, n / steps, step / steps, busy / steps) for owner, (n, step, busy) in totals.items()]
    return (latest - first) / 1e3 / steps, sorted(shares, key=lambda x: -x.step_us)


def _kind(name: str) -> str:
    """gemm (cuBLAS / CUTLASS), slot (an NVRTC ``extern "C"`` kernel: a plain name, even one called
    ``dec_gemv...``: the fused path's projections are slot kernels) or other (PyTorch's)."""
    lower = name.lower()
    if _PLAIN_NAME.fullmatch(name) and not lower.startswith(_VENDOR_PREFIXES):
        return "slot"
    return "gemm" if any(marker in lower for marker in _GEMM_MARKERS) else "other"


@torch.no_grad()
def profile_decode(model: Transformer, prompt_len: int, steps: int = 16, fused: bool = False,
                   pdl: bool = False) -> DecodeProfile:
    """Profile ``steps`` static decode steps after a ``prompt_len`` prompt; time the graph step too.
    ``fused``: the fused decode path (``fused.py``), its graph with PDL where ``pdl``."""
    from torch.profiler import ProfilerActivity, profile

    device = model.tok_embeddings.weight.device
    gen = torch.Generator(device="cpu").manual_seed(prompt_len)
    prompt = torch.randint(0, model.cfg.vocab_size, (model.batch, prompt_len), generator=gen).to(device)
    logits = prefill(model, prompt)
    token = logits.argmax(-1, keepdim=True)
    if fused:
        from autotuner.deploy.fused import FusedGraphDecoder, fused_step

        step = fused_step(model)
    else:
        step = static_step(model)
    for i in range(3):  # compile and warm every kernel outside the profile
        step(token, prompt_len + i)
    torch.cuda.synchronize()
    launches: list[tuple[str | None, str]] = []
    ranged = slot_ranges(model.slots, FUSED_SLOTS + ("attention_decode",), launches) if fused else nullcontext()
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if fused else [ProfilerActivity.CUDA]  # CPU: the ranges
    with ranged, profile(activities=activities) as prof:
        for i in range(steps):
            step(token, prompt_len + i)
        torch.cuda.synchronize()
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # name -> [calls, us]
    for evt in prof.key_averages():
        us = float(evt.self_device_time_total)
        if not str(evt.device_type).endswith("CUDA") or us <= 0 or evt.key.startswith(SLOT_RANGE):
            continue  # kernels only, not their CPU-side ops nor the slots' ranges
        totals[evt.key][0] += evt.count
        totals[evt.key][1] += us
    traffic = slot_traffic(model, prompt_len + steps // 2) if fused else {}
    by_slot = slot_times(prof.events(), launches, steps, fused_slot_bytes(model, prompt_len + steps // 2)) if fused else []
    kernels = sorted((KernelTime(name, _kind(name), calls / steps, us / steps, traffic.get(name, 0))
                      for name, (calls, us) in totals.items()), key=lambda k: -k.us_per_step)
    graph = FusedGraphDecoder(model, pdl=pdl) if fused else GraphDecoder(model)
    for i in range(3):
        graph.step(token, prompt_len + i)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        graph.step(token, prompt_len + i)
    torch.cuda.synchronize()
    graph_ms = (time.perf_counter() - start) * 1e3 / steps
    profiled_ms, shares = 0.0, []
    if fused:  # the graph step itself, where PDL overlaps the kernels: what each slot adds to it
        with profile(activities=[ProfilerActivity.CUDA]) as gprof:
            for i in range(steps):
                graph.step(token, prompt_len + i)
            torch.cuda.synchronize()
        per_step = len(launches) // steps if steps else 0
        profiled_ms, shares = step_shares(gprof.events(), launches[:per_step], steps)
    return DecodeProfile(
        model=model.cfg.name, prompt_len=prompt_len, steps=steps, graph_ms=graph_ms,
        busy_ms=sum(k.us_per_step for k in kernels) / 1e3, kernels_per_step=sum(k.calls_per_step for k in kernels),
        weight_bytes=model.weight_bytes(), kernels=kernels, slots=by_slot, graph_profiled_ms=profiled_ms,
        shares=shares,
    )  # fmt: skip


def format_profile(p: DecodeProfile, copy_gbps: float | None, top: int = 15) -> str:
    kinds = p.by_kind()
    gemm_ms = kinds.get("gemm", 0.0)
    lines = [
        f"{p.model}, prompt {p.prompt_len}: CUDA-graph step {p.graph_ms:.3f} ms; kernels {p.busy_ms:.3f} ms "
        f"({p.kernels_per_step:.0f} per step), so launches and gaps cost {p.graph_ms - p.busy_ms:.3f} ms",
        "  by kind: " + ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])),
    ]
    slot_ms = kinds.get("slot", 0.0)
    if slot_ms > 0 and gemm_ms == 0:  # the fused path: the projections are slot kernels
        rate = p.weight_bytes / (slot_ms * 1e-3) / 1e9
        vs = f" ({100 * rate / copy_gbps:.0f}% of the {copy_gbps:,.0f} GB/s copy bandwidth)" if copy_gbps else ""
        lines.append(f"  slot kernels read {p.weight_bytes / 1e9:.2f} GB of weights in {slot_ms:.3f} ms: {rate:,.0f} GB/s{vs}")
    if gemm_ms > 0:
        rate = p.weight_bytes / (gemm_ms * 1e-3) / 1e9
        vs = f" ({100 * rate / copy_gbps:.0f}% of the {copy_gbps:,.0f} GB/s copy bandwidth)" if copy_gbps else ""
        lines.append(f"  GEMMs read {p.weight_bytes / 1e9:.2f} GB in {gemm_ms:.3f} ms: {rate:,.0f} GB/s{vs}")
    lines.append(f"  {'kernel':<70} {'kind':<6} {'calls':>6} {'us/step':>9} {'MB/step':>8} {'GB/s':>6} {'% copy':>6}")
    lines += [_row(k, copy_gbps) for k in p.kernels[:top]]
    if p.slots:
        lines.append("  by fused slot (the device time of the kernels each slot's calls launched):")
        lines.append(f"  {'slot':<70} {'kind':<6} {'calls':>6} {'us/step':>9} {'MB/step':>8} {'GB/s':>6} {'% copy':>6}")
        lines += [_row(k, copy_gbps) for k in p.slots]
    if p.shares:
        lines.append(f"  in the CUDA-graph step, profiled ({p.graph_profiled_ms:.3f} ms a step): what each slot adds to "
                     "the step (its kernels' ends past the latest end before them; the shares sum to the step) "
                     "and its kernels' device time (overlapping under PDL)")
        lines.append(f"  {'slot or kernel':<70} {'calls':>6} {'step us':>8} {'% step':>6} {'busy us':>8}")
        total = sum(x.step_us for x in p.shares) or 1.0
        lines += [f"  {x.name[:70]:<70} {x.calls_per_step:>6.1f} {x.step_us:>8.1f} {100 * x.step_us / total:>6.1f} "
                  f"{x.busy_us:>8.1f}" for x in p.shares[:top]]
    return "\n".join(lines)


def _row(k: KernelTime, copy_gbps: float | None) -> str:
    rate = k.gbps()
    cells = (f" {k.bytes_per_step / 1e6:>8.1f} {rate:>6,.0f} " + (f"{100 * rate / copy_gbps:>6.0f}" if copy_gbps else
                                                                   f"{'-':>6}")) if rate else ""
    return f"  {k.name[:70]:<70} {k.kind:<6} {k.calls_per_step:>6.1f} {k.us_per_step:>9.1f}{cells}"
