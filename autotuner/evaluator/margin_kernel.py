"""The check after every timed call, in one pass over the output and the reference.

``compare.passes_with_margin`` shows that an output passes ``compare_outputs`` with torch ops:
about 15 passes over memory and three host syncs per tensor (7.7 ms for softmax's 2 GiB
output on an H200, 0.42 s of a candidate's 1.9 s). This kernel reads each element of the
output and the reference once and leaves, per block, what the same verdict needs:

    sum r^2, sum d^2          d = |fl32(o - r)|, the full comparison's difference
    max (d - K * a)           a = fl32(|r| * fl32(rtol)), K = 1 - 2^-20, fused, rounded once
    a non-finite flag         any NaN or infinity on either side (then: ask compare_outputs)
    max d                     the figure a passing comparison records

all in float64. The host adds the blocks and passes the output only where ``compare_outputs``
passes too: the relative L2 error with the same factor-2 margin as ``passes_with_margin``, and
every element within ``K * (a + c)`` for ``c = atol * rms / 2``. The full comparison allows
``fl32(a + fl32(atol * rms))``, which is at least ``(1 - 2^-24) * (a + (1 - 2^-24) * atol * rms)``
(round to nearest), so the smaller scale and ``K`` leave room for every rounding here. False
says nothing: the caller asks the torch path (which gives the reason a person reads).

Built before the candidate is imported (``build``), launched through the CuPy function it
holds, so a candidate cannot swap it for one that always passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from autotuner.evaluator.compare import Comparison

# fp32 / bf16 / fp16 element types; the kernel reads them as the full comparison's .float() does.
DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
K = 1.0 - 2.0 ** -20  # the per-element slack factor (see the module docstring)
THREADS = 256

SOURCE = r'''
#if !defined(__CUDA_ARCH__)  // the CPU emulator of the tests
#include <math.h>
__device__ __forceinline__ float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
__device__ __forceinline__ float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
__device__ __forceinline__ double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float h2f(unsigned short h) {  // IEEE half to float, exactly
    const unsigned int s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) return __uint_as_float(s | 0x7f800000u | (m << 13));
    if (e == 0) { float v = (float)m * 5.9604644775390625e-08f; return s ? -v : v; }
    return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
}
#else
__device__ __forceinline__ float h2f(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
#endif

#if DTYPE == 0
typedef float elem_t;
__device__ __forceinline__ float to_f(float v) { return v; }
#else
typedef unsigned short elem_t;
#if DTYPE == 1
__device__ __forceinline__ float to_f(unsigned short v) { return __uint_as_float(((unsigned int)v) << 16); }
#else
__device__ __forceinline__ float to_f(unsigned short v) { return h2f(v); }
#endif
#endif

__device__ __forceinline__ bool not_finite(float v) { return (__float_as_uint(v) & 0x7f800000u) == 0x7f800000u; }

// One element: its squares, its slack d - K * a, whether it is finite.
__device__ __forceinline__ void take(float o, float r, float rtol, double k, double& sr, double& sd, double& worst,
                                     int& bad, float& dmax) {
    const float d = fabsf(__fsub_rn(o, r));
    const float a = __fmul_rn(fabsf(r), rtol);
    sr = __fma_rn((double)r, (double)r, sr);
    sd = __fma_rn((double)d, (double)d, sd);
    const double t = __fma_rn(-k, (double)a, (double)d);
    worst = t > worst ? t : worst;
    dmax = d > dmax ? d : dmax;
    bad |= (int)(not_finite(o) | not_finite(r));
}

// part[block * 5 + {0, 1, 2, 3, 4}] = sum r^2, sum d^2, max slack, non-finite (0 / 1), max d.
extern "C" __global__ void __launch_bounds__(256)
margin_check(const void* __restrict__ o_, const void* __restrict__ r_, long long n, float rtol, double k,
             double* __restrict__ part)
{
    const elem_t* o = reinterpret_cast<const elem_t*>(o_);
    const elem_t* r = reinterpret_cast<const elem_t*>(r_);
    __shared__ double s_sr[256];
    __shared__ double s_sd[256];
    __shared__ double s_w[256];
    __shared__ int s_bad[256];
    __shared__ float s_max[256];
    double sr = 0.0, sd = 0.0, worst = -1.0e300;
    float dmax = 0.0f;
    int bad = 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {  // four loads of each side in flight
        float ov[4], rv[4];
        #pragma unroll
        for (int u = 0; u < 4; ++u) { ov[u] = to_f(o[i + u * stride]); rv[u] = to_f(r[i + u * stride]); }
        #pragma unroll
        for (int u = 0; u < 4; ++u) take(ov[u], rv[u], rtol, k, sr, sd, worst, bad, dmax);
    }
    for (; i < n; i += stride) take(to_f(o[i]), to_f(r[i]), rtol, k, sr, sd, worst, bad, dmax);
    const int t = threadIdx.x;
    s_sr[t] = sr; s_sd[t] = sd; s_w[t] = worst; s_bad[t] = bad; s_max[t] = dmax;
    __syncthreads();
    for (int h = blockDim.x >> 1; h > 0; h >>= 1) {
        if (t < h) {
            s_sr[t] += s_sr[t + h];
            s_sd[t] += s_sd[t + h];
            s_w[t] = s_w[t + h] > s_w[t] ? s_w[t + h] : s_w[t];
            s_bad[t] |= s_bad[t + h];
            s_max[t] = s_max[t + h] > s_max[t] ? s_max[t + h] : s_max[t];
        }
        __syncthreads();
    }
    if (t == 0) {
        double* p = part + 5 * (long long)blockIdx.x;
        p[0] = s_sr[0]; p[1] = s_sd[0]; p[2] = s_w[0]; p[3] = (double)s_bad[0]; p[4] = (double)s_max[0];
    }
}
'''


def verdict(sums: list[float], n: int, tol: dict[str, float]) -> bool:
    """True only where ``compare_outputs`` passes, from the blocks' combined
    (sum r^2, sum d^2, max slack, non-finite[, max d])."""
    sum_r2, sum_d2, worst, bad = sums[:4]
    if bad or not (math.isfinite(sum_r2) and math.isfinite(sum_d2) and math.isfinite(worst)):
        return False
    ref_norm, err_norm = math.sqrt(sum_r2), math.sqrt(sum_d2)
    if not ref_norm > 0:
        return False
    # float64 sums of n terms: relative error far below the factor 2 left on either test
    if 2 * err_norm > tol["rel_l2"] * ref_norm:
        return False
    c = tol["atol"] * max(0.5 * ref_norm / math.sqrt(n), 1e-30)
    return worst <= K * c * (1.0 - 2.0 ** -40)  # the slack was rounded once, relative 2^-53


Launch = Callable[[int, int, int, tuple[Any, ...]], None]  # (dtype code, blocks, threads, kernel arguments)


class MarginKernel:
    """The compiled check; ``passes(out, ref, tol)``: True, False, or None where it cannot
    judge (not a contiguous fp32 / bf16 / fp16 pair): then the torch path decides."""

    def __init__(self, launch: Launch, max_blocks: int, dtypes: Iterable[torch.dtype] = tuple(DTYPE_CODES)) -> None:
        self._launch = launch
        self.max_blocks = max_blocks
        self.threads = THREADS  # a power of two up to 256 (the kernel's shared-memory tree)
        self.dtypes = frozenset(d for d in dtypes if d in DTYPE_CODES)

    @classmethod
    def build(cls, dtypes: Iterable[torch.dtype] = tuple(DTYPE_CODES)) -> MarginKernel | None:
        """Compiled for the current GPU (NVRTC, disk-cached) for ``dtypes``; None where it
        cannot be (then the torch path is used: a slower check, never a wrong one)."""
        try:
            import cupy
            import numpy as np

            from autotuner.runtime.compile import compile_module

            device = torch.cuda.current_device()
            functions = {code: compile_module(SOURCE, defines={"DTYPE": code}).raw.get_function("margin_check")
                         for code in sorted({DTYPE_CODES[d] for d in dtypes if d in DTYPE_CODES})}
            sms = torch.cuda.get_device_properties(device).multi_processor_count
        except Exception:  # noqa: BLE001
            return None
        streams: dict[int, Any] = {}

        def launch(code: int, blocks: int, threads: int, args: tuple[Any, ...]) -> None:
            handle = int(torch.cuda.current_stream(device).cuda_stream)
            stream = streams.get(handle) or streams.setdefault(handle, cupy.cuda.ExternalStream(handle, device))
            out, ref, n, rtol, k, part = args
            with cupy.cuda.Device(device):
                functions[code]((blocks,), (threads,), (np.uint64(out.data_ptr()), np.uint64(ref.data_ptr()),
                                                        np.int64(n), np.float32(rtol), np.float64(k),
                                                        np.uint64(part.data_ptr())), stream=stream)

        return cls(launch, max_blocks=8 * sms, dtypes=dtypes)

    def judgeable(self, out: Any, ref: Any) -> bool:
        # plain tensors only: a subclass could answer data_ptr() with another tensor's memory
        return (type(out) is torch.Tensor and type(ref) is torch.Tensor and ref.dtype in self.dtypes
                and out.dtype == ref.dtype and out.shape == ref.shape and out.device == ref.device
                and out.is_contiguous() and ref.is_contiguous() and ref.numel() > 0)

    def sums(self, out: torch.Tensor, ref: torch.Tensor, rtol: float) -> list[float]:
        """(sum r^2, sum d^2, max slack, non-finite, max d) over the whole tensors: one host sync."""
        n = ref.numel()
        blocks = max(1, min(self.max_blocks, -(-n // (self.threads * 4))))
        part = torch.empty(blocks * 5, dtype=torch.float64, device=ref.device)
        self._launch(DTYPE_CODES[ref.dtype], blocks, self.threads, (out, ref, n, float(rtol), K, part))
        part = part.view(blocks, 5)
        return torch.cat([part[:, :2].sum(0), part[:, 2:].amax(0)]).tolist()  # sums, then maxima

    def _sums(self, out: Any, ref: Any, tol: dict[str, float]) -> list[float] | None:
        return self.sums(out, ref, tol["rtol"]) if self.judgeable(out, ref) else None

    def passes(self, out: Any, ref: Any, tol: dict[str, float]) -> bool | None:
        sums = self._sums(out, ref, tol)
        return None if sums is None else verdict(sums, ref.numel(), tol)

    def comparison(self, out: Any, ref: Any, tol: dict[str, float]) -> Comparison | None:
        """A passing ``Comparison`` with its figures (max abs error, relative L2 error from the
        float64 sums) where the kernel shows the output passes; None leaves it to the torch path."""
        sums = self._sums(out, ref, tol)
        if sums is None or not verdict(sums, ref.numel(), tol):
            return None
        return Comparison(True, "", sums[4], math.sqrt(sums[1]) / math.sqrt(sums[0]))
