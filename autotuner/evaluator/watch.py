"""Watch what a candidate really does while its forward runs.

* ``OpWatch`` is a dispatch mode: it sees every PyTorch op the candidate calls, from Python or
  from C++ (``load_inline``), however the source hides it, and fills every uninitialized
  allocation with a poison value so that unwritten output elements cannot pass.
* ``trace_kernels`` records, with the CUDA profiler, every GPU kernel one forward launched
  and the stream it ran on.
* ``HarnessGuard`` remembers the harness's timers and numeric switches (TF32 and friends)
  and says which ones changed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_META = {
    "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "is_contiguous", "size",
    "stride", "numel", "dim", "_local_scalar_dense", "lift_fresh", "is_same_size",
}
_ALLOC_UNINIT = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}
_ALLOC_INIT = {"zeros", "zeros_like", "new_zeros", "zero_", "fill_", "full", "full_like",
               "new_full", "ones", "ones_like", "new_ones", "scalar_tensor"}
# Ops that return fresh device memory: placed between guard bytes when guards are on.
_ALLOC_FRESH = _ALLOC_UNINIT | {"zeros", "zeros_like", "new_zeros", "full", "full_like", "new_full", "ones",
                                "ones_like", "new_ones"}
_VIEWS = {
    "view", "_unsafe_view", "reshape", "as_strided", "permute", "transpose", "t", "expand",
    "unsqueeze", "squeeze", "select", "slice", "narrow", "detach", "alias", "unbind", "split",
    "split_with_sizes", "chunk", "view_as", "expand_as", "unflatten", "flatten", "contiguous",
    "_reshape_alias", "view_as_real", "view_as_complex", "movedim", "swapaxes", "swapdims",
}
_GEMM_CONV = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "convolution", "_convolution",
              "conv1d", "conv2d", "conv3d", "cudnn_convolution", "conv_transpose2d"}

ALLOWED_OPS = {
    "strict": _META | _ALLOC_UNINIT | _ALLOC_INIT | _VIEWS,
    "hybrid": _META | _ALLOC_UNINIT | _ALLOC_INIT | _VIEWS | _GEMM_CONV,
}


def poison_(tensor: torch.Tensor) -> None:
    """Fill with a value no honest kernel leaves behind."""
    if tensor.is_floating_point() or tensor.is_complex():
        tensor.fill_(float("nan"))
    elif tensor.dtype == torch.bool:
        tensor.fill_(True)
    elif tensor.dtype == torch.uint8:
        tensor.fill_(0xA5)
    else:
        tensor.fill_(torch.iinfo(tensor.dtype).min + 0x5A)


class OpWatch(TorchDispatchMode):
    """Records PyTorch ops outside the policy and poisons fresh allocations."""

    def __init__(self, policy: str, poison: bool = True, guards: Any = None) -> None:
        super().__init__()
        self.allowed = ALLOWED_OPS[policy]
        self.poison = poison
        self.guards = guards  # a guard.GuardSet: fresh allocations go between guard bytes
        self.ops: list[str] = []
        self.forbidden: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = func.overloadpacket.__name__
        self.ops.append(name)
        if name not in self.allowed:
            self.forbidden.append(str(func))
        result = func(*args, **(kwargs or {}))
        if self.guards is not None and name in _ALLOC_FRESH and isinstance(result, torch.Tensor) \
                and self.guards.applies(result):
            with torch.no_grad():
                result = self.guards.guarded_like(result, f"a tensor from {name}{tuple(result.shape)}",
                                                  copy=name not in _ALLOC_UNINIT)
        if self.poison and name in _ALLOC_UNINIT and isinstance(result, torch.Tensor):
            with torch.no_grad():
                poison_(result)
        return result


@dataclass
class KernelRecord:
    name: str
    stream: int
    duration_us: float


@dataclass
class KernelTrace:
    kernels: list[KernelRecord] = field(default_factory=list)
    current_stream: int | None = None


def trace_kernels(fn: Callable[[], Any]) -> tuple[Any, KernelTrace]:
    """Run ``fn`` under the CUDA profiler; return its result and every kernel it launched.

    A marker kernel launched first on the current stream tells which stream id the profiler
    gives the current stream.
    """
    from torch.profiler import ProfilerActivity, profile

    marker = torch.empty(1, device="cuda")
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        marker.fill_(1.0)
        torch.cuda.synchronize()
        result = fn()
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f).get("traceEvents", [])
    kernels = sorted(
        (e for e in events if e.get("cat") == "kernel"), key=lambda e: float(e.get("ts", 0))
    )
    trace = KernelTrace()
    if kernels:
        trace.current_stream = int(kernels[0].get("args", {}).get("stream", -1))
        for e in kernels[1:]:
            trace.kernels.append(
                KernelRecord(str(e.get("name", "")), int(e.get("args", {}).get("stream", -1)),
                             float(e.get("dur", 0.0)))
            )
    return result, trace


def _flags() -> dict[str, Any]:
    return {
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
        "torch.float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch.backends.cudnn.benchmark": torch.backends.cudnn.benchmark,
        "torch.backends.cudnn.deterministic": torch.backends.cudnn.deterministic,
        "torch.default_dtype": torch.get_default_dtype(),
    }


def _timers() -> dict[str, Any]:
    return {
        "torch.cuda.synchronize": torch.cuda.synchronize,
        "torch.cuda.Event": torch.cuda.Event,
        "torch.cuda.Event.record": torch.cuda.Event.record,
        "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
        "torch.cuda.Event.synchronize": torch.cuda.Event.synchronize,
        "torch.cuda.current_stream": torch.cuda.current_stream,
        "torch.cuda.Stream.synchronize": torch.cuda.Stream.synchronize,
        "time.perf_counter": time.perf_counter,
        "torch.equal": torch.equal,
        "torch.isnan": torch.isnan,
        "torch.linalg.vector_norm": torch.linalg.vector_norm,
        "torch.cat": torch.cat,  # the margin kernel's sums (evaluator/margin_kernel.py)
        "torch.stack": torch.stack,
        "torch.Tensor.tolist": torch.Tensor.tolist,
        "torch.Tensor.sum": torch.Tensor.sum,
        "torch.Tensor.max": torch.Tensor.max,
        "torch.Tensor.amax": torch.Tensor.amax,
        "torch.Tensor.clone": torch.Tensor.clone,
        "torch.nn.Module.__call__": torch.nn.Module.__call__,
    }


class HarnessGuard:
    """Snapshot of what the harness relies on; ``changes()`` lists what a candidate altered."""

    def __init__(self) -> None:
        self.flags = _flags()
        self.timers = _timers()

    def changes(self) -> list[str]:
        changed = [f"{k} changed from {v!r} to {_flags()[k]!r}" for k, v in self.flags.items() if _flags()[k] != v]
        now = _timers()
        changed += [f"{k} was replaced" for k, v in self.timers.items() if now[k] is not v]
        return changed


def set_strict_numerics() -> None:
    """The switches every reference and candidate runs under: no TF32, no reduced precision."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.backends.cudnn.benchmark = False
