"""How long NVRTC compiles take here: cold (a new source), from the disk cache, from memory.

Cold compiles use sources made unique by a random token, so neither cache can answer. A cold
compile is split into NVRTC alone (source to binary, the options CuPy passes) and loading that
binary (``cuModuleLoadData`` and the function lookup; a PTX binary is JIT-compiled by the driver
here), so a slow cold compile says which of the two to work on.
"""

from __future__ import annotations

import logging
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autotuner.runtime.compile import (DEFAULT_OPTIONS, RAWMODULE_OPTIONS, _cupy, clear_memory_cache, compile_module,
                                       nvrtc_cubin)

log = logging.getLogger(__name__)

# A realistic small kernel: a vectorized elementwise op with a tail, as candidates write them.
_TEMPLATE = r"""
// token {token}
extern "C" __global__ void scale_add(const float* __restrict__ x, const float* __restrict__ y,
                                     float* __restrict__ out, float alpha, long long n) {{
    long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    long long stride = (long long)gridDim.x * blockDim.x * 4;
    for (; i + 3 < n; i += stride) {{
        float4 a = *reinterpret_cast<const float4*>(x + i);
        float4 b = *reinterpret_cast<const float4*>(y + i);
        float4 c = make_float4(alpha * a.x + b.x, alpha * a.y + b.y, alpha * a.z + b.z, alpha * a.w + b.w);
        *reinterpret_cast<float4*>(out + i) = c;
    }}
    for (; i < n; ++i) out[i] = alpha * x[i] + y[i];
}}
"""


@dataclass
class LatencyStats:
    p50_ms: float
    p95_ms: float
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> "LatencyStats":
        ordered = sorted(samples)
        return cls(statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], len(ordered))


def binary_format(image: bytes) -> str:
    """``"cubin"`` (an ELF image: loads as is) or ``"ptx"`` (text the driver JIT-compiles at load)."""
    return "cubin" if image[:4] == b"\x7fELF" else "ptx"


def _timed_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1e3, result


def nvrtc_only(source: str, options: Sequence[str] = DEFAULT_OPTIONS) -> bytes:
    """NVRTC alone, as ``compile_module`` calls it for this GPU: no cache, no load."""
    import torch

    _cupy()
    major, minor = torch.cuda.get_device_capability()
    return nvrtc_cubin(source, tuple(options) + RAWMODULE_OPTIONS, f"sm_{major}{minor}")


def load_only(image: bytes, name: str) -> Any:
    """Load a compiled image and look ``name`` up: the part of a cold compile after NVRTC."""
    module = _cupy().cuda.function.Module()
    module.load(image)
    return module.get_function(name)


def nvrtc_output_format() -> str:
    """What NVRTC hands the loader on this GPU: ``cubin`` (no JIT at load), ``ptx``, or
    ``unknown`` when CuPy's compiler module cannot be called this way."""
    try:
        return binary_format(nvrtc_only(_TEMPLATE.format(token="format")))
    except Exception as exc:  # noqa: BLE001 - a diagnostic extra must not take the doctor down
        log.warning("NVRTC output format unknown: %s: %s", type(exc).__name__, exc)
        return "unknown"


def _unique_sources(n: int) -> list[str]:
    return [_TEMPLATE.format(token=secrets.token_hex(8)) for _ in range(n)]


def compile_latency(n: int = 20) -> dict[str, LatencyStats]:
    """Time ``n`` cold compiles (end to end; with a new define each, as rule candidates have;
    NVRTC alone; load alone), then the same sources from disk, then from memory."""

    def timed(src: str, defines: dict[str, int] | None = None) -> float:
        return _timed_ms(lambda: compile_module(src, defines=defines).kernel("scale_add"))[0]

    compile_module(_TEMPLATE.format(token="warm")).kernel("scale_add")  # load NVRTC once
    sources = _unique_sources(n)
    cold = [timed(s) for s in sources]
    cold_defines = [timed(s, {"LATENCY_PROBE": i}) for i, s in enumerate(_unique_sources(n))]
    clear_memory_cache()
    disk = [timed(s) for s in sources]
    memory = [timed(s) for s in sources]
    out = {"cold": LatencyStats.of(cold), "cold_new_defines": LatencyStats.of(cold_defines)}
    return out | _split_series(n) | {"disk_cache": LatencyStats.of(disk), "memory_cache": LatencyStats.of(memory)}


def _split_series(n: int) -> dict[str, LatencyStats]:
    """NVRTC alone and load alone, through CuPy's compiler module (not its public API): empty,
    with the reason logged, when this CuPy calls it differently; the end-to-end series stand."""
    try:
        load_only(nvrtc_only(_TEMPLATE.format(token="warm")), "scale_add")
        compiled = [_timed_ms(lambda s=s: nvrtc_only(s)) for s in _unique_sources(n)]
        load = [_timed_ms(lambda image=image: load_only(image, "scale_add"))[0] for _, image in compiled]
    except Exception as exc:  # noqa: BLE001 - a diagnostic extra must not take the doctor down
        log.warning("NVRTC-only / load-only timing skipped: %s: %s", type(exc).__name__, exc)
        return {}
    return {"nvrtc_only": LatencyStats.of([ms for ms, _ in compiled]), "load_only": LatencyStats.of(load)}
