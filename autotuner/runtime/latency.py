"""How long NVRTC compiles take here: cold (a new source), from the disk cache, from memory.

Cold compiles use sources made unique by a random token, so neither cache can answer.
"""

from __future__ import annotations

import secrets
import statistics
import time
from dataclasses import dataclass

from autotuner.runtime.compile import clear_memory_cache, compile_module

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


def compile_latency(n: int = 20) -> dict[str, LatencyStats]:
    """Time ``n`` cold compiles, then the same sources from disk, then from memory."""
    sources = [_TEMPLATE.format(token=secrets.token_hex(8)) for _ in range(n)]

    def timed(src: str) -> float:
        start = time.perf_counter()
        compile_module(src).kernel("scale_add")
        return (time.perf_counter() - start) * 1e3

    compile_module(_TEMPLATE.format(token="warm")).kernel("scale_add")  # load NVRTC once
    cold = [timed(s) for s in sources]
    clear_memory_cache()
    disk = [timed(s) for s in sources]
    memory = [timed(s) for s in sources]
    return {"cold": LatencyStats.of(cold), "disk_cache": LatencyStats.of(disk), "memory_cache": LatencyStats.of(memory)}
