#!/usr/bin/env python3
"""How close can an elementwise kernel get to the copy rate on this GPU? (issue 12, item 2)

y = relu(x) on 1 GiB of fp32, several kernel forms, each timed as the device time of
back-to-back launches (CUDA events; the tensors are 20x the L2, so every call reads DRAM), beside
``dst.copy_(src)`` (the copy rate the roofline uses) and ``torch.relu``:

* ``block``: a block per BLOCK x ITEMS 16-byte vectors, no grid-stride loop (the rules'
  pointwise default); LOAD / STORE cache hints: ``nc`` (read-only path), ``256B`` (no L1
  allocation, 256-byte L2 prefetch), ``cs`` (evict-first streaming);
* ``tma``: persistent blocks streaming CHUNK-byte pieces through a ring of STAGES shared-memory
  buffers with Hopper's bulk copies (cp.async.bulk, an mbarrier per stage), the relu applied
  in shared memory, the result written back with a bulk store.

A development probe (the numbers are for deciding what the rules' pointwise template should
emit), printed as a table: ms (median / min), GB/s, % of the copy.
"""

from __future__ import annotations

import statistics
import sys

import cupy as cp
import torch

SOURCE = r"""
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef LOAD
#define LOAD 0
#endif
#ifndef STORE
#define STORE 0
#endif
#ifndef CHUNK
#define CHUNK 16384
#endif
#ifndef STAGES
#define STAGES 4
#endif

__device__ __forceinline__ float4 ld(const float4* p) {
#if LOAD == 1
    float4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.f32 {%0,%1,%2,%3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
    return v;
#elif LOAD == 2
    return __ldcs(p);
#else
    return __ldg(p);
#endif
}

__device__ __forceinline__ void st(float4* p, float4 v) {
#if STORE == 1
    __stcs(p, v);
#else
    *p = v;
#endif
}

__device__ __forceinline__ float4 relu4(float4 v) {
    v.x = fmaxf(v.x, 0.f); v.y = fmaxf(v.y, 0.f); v.z = fmaxf(v.z, 0.f); v.w = fmaxf(v.w, 0.f);
    return v;
}

extern "C" __global__ void __launch_bounds__(BLOCK) relu_block(const float4* __restrict__ x, float4* __restrict__ y,
                                                                long long n4) {
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
    float4 v[ITEMS];
    #pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const long long g = base + (long long)i * BLOCK;
        if (g < n4) v[i] = ld(x + g);
    }
    #pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
        const long long g = base + (long long)i * BLOCK;
        if (g < n4) st(y + g, relu4(v[i]));
    }
}

__device__ __forceinline__ unsigned smem_addr(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
    unsigned done = 0;
    while (!done)
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(done) : "r"(bar), "r"(parity) : "memory");
}

// Persistent: block b takes chunks b, b + grid, ...; STAGES - 1 loads in flight ahead of the
// chunk being computed; thread 0 issues every bulk copy.
extern "C" __global__ void __launch_bounds__(BLOCK) relu_tma(const float* __restrict__ x, float* __restrict__ y,
                                                              long long nchunks) {
    extern __shared__ __align__(128) unsigned char ring[];
    __shared__ __align__(8) unsigned long long bars[STAGES];
    const int tid = threadIdx.x;
    if (tid == 0) {
        for (int s = 0; s < STAGES; ++s)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(smem_addr(&bars[s])) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const long long first = blockIdx.x, stride = gridDim.x;
    const long long mine = first < nchunks ? (nchunks - first + stride - 1) / stride : 0;
    #define ISSUE(i) do {                                                                              \
        const int s_ = (int)((i) % STAGES);                                                            \
        const long long c_ = first + (i) * stride;                                                     \
        const unsigned bar_ = smem_addr(&bars[s_]);                                                    \
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar_), "r"(CHUNK) : "memory"); \
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"     \
                     :: "r"(smem_addr(ring + s_ * CHUNK)), "l"(x + c_ * (CHUNK / 4)), "r"(CHUNK), "r"(bar_)    \
                     : "memory");                                                                      \
    } while (0)
    if (tid == 0)
        for (long long i = 0; i < STAGES - 1 && i < mine; ++i) ISSUE(i);
    for (long long i = 0; i < mine; ++i) {
        const int s = (int)(i % STAGES);
        mbar_wait(smem_addr(&bars[s]), (unsigned)((i / STAGES) & 1));
        float4* p = reinterpret_cast<float4*>(ring + s * CHUNK);
        #pragma unroll 4
        for (int k = tid; k < CHUNK / 16; k += BLOCK) p[k] = relu4(p[k]);
        __syncthreads();
        if (tid == 0) {
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;"
                         :: "l"(y + (first + i * stride) * (CHUNK / 4)), "r"(smem_addr(ring + s * CHUNK)), "r"(CHUNK)
                         : "memory");
            asm volatile("cp.async.bulk.commit_group;" ::: "memory");
            if (i + STAGES - 1 < mine) {
                // the stage about to be refilled was stored by iteration i - 1: wait until that
                // store has read it (this iteration's may still be in flight)
                asm volatile("cp.async.bulk.wait_group.read 1;" ::: "memory");
                ISSUE(i + STAGES - 1);
            }
        }
    }
    if (tid == 0) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}
"""


def _time(fn, calls: int = 20) -> tuple[float, float]:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(calls):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times)


def main() -> int:
    n = 256 << 20  # 1 GiB of fp32
    x = torch.randn(n, device="cuda")
    y = torch.empty_like(x)
    want = torch.relu(x)
    nbytes = 2 * n * 4
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
    rows = []
    copy_med, copy_min = _time(lambda: y.copy_(x))
    rows.append(("copy_ (the roofline's copy)", copy_med, copy_min))
    rows.append(("torch.relu", *_time(lambda: torch.relu(x))))
    forms = [("block", {"BLOCK": b, "ITEMS": it, "LOAD": ld, "STORE": st})
             for b, it in ((256, 1), (256, 2), (256, 4), (512, 2), (128, 4)) for ld in (0, 1, 2) for st in (0, 1)
             if (ld, st) == (0, 0) or (b, it) in ((256, 1), (256, 4))]
    forms += [("tma", {"BLOCK": 256, "CHUNK": c, "STAGES": s, "OCC": o})
              for c, s in ((16384, 4), (8192, 8), (32768, 3), (16384, 6)) for o in (1, 2, 3)]
    for kind, d in forms:
        defines = {k: v for k, v in d.items() if k != "OCC"}
        opts = tuple(f"-D{k}={v}" for k, v in defines.items()) + ("-std=c++17",)
        label = f"{kind} " + " ".join(f"{k}={v}" for k, v in d.items())
        try:
            mod = cp.RawModule(code=SOURCE, options=opts)
            if kind == "block":
                kern = mod.get_function("relu_block")
                per = d["BLOCK"] * d["ITEMS"]
                grid = (n // 4 + per - 1) // per

                def run(kern=kern, grid=grid, d=d):
                    with stream:
                        kern((grid,), (d["BLOCK"],), (x.data_ptr(), y.data_ptr(), cp.int64(n // 4)))
            else:
                kern = mod.get_function("relu_tma")
                smem = d["CHUNK"] * d["STAGES"]
                if smem > 48 * 1024:
                    kern.max_dynamic_shared_size_bytes = smem
                chunks = n * 4 // d["CHUNK"]
                grid = sms * d["OCC"]

                def run(kern=kern, grid=grid, d=d, smem=smem, chunks=chunks):
                    with stream:
                        kern((grid,), (d["BLOCK"],), (x.data_ptr(), y.data_ptr(), cp.int64(chunks)), shared_mem=smem)
            y.zero_()
            run()
            torch.cuda.synchronize()
            if not torch.equal(y, want):
                rows.append((label + "  WRONG", float("nan"), float("nan")))
                continue
            rows.append((label, *_time(run)))
        except Exception as exc:  # noqa: BLE001 - a probe reports and goes on
            rows.append((label + f"  FAILED {type(exc).__name__}: {str(exc)[:120]}", float("nan"), float("nan")))
    print(f"# {torch.cuda.get_device_name()}: relu over {n * 4 / 2**30:.0f} GiB fp32, {nbytes / 1e9:.2f} GB moved")
    print("| form | median ms | min ms | GB/s (median) | % of copy (median) |")
    print("|---|---|---|---|---|")
    for label, med, low in rows:
        print(f"| {label} | {med:.4f} | {low:.4f} | {nbytes / med / 1e6:,.0f} | {100 * copy_med / med:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
