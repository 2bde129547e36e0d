#!/usr/bin/env python3
"""Pin down wgmma's shared-memory descriptors on the GPU before a flash kernel relies on them.

A Hopper flash-attention kernel (what cuDNN's SDPA runs on an H200: 0.25 ms where the mma.sync
kernel takes 0.57, 2026-12-02) needs two products per key chunk: S = Q K^T with both operands
K-major in 128-byte-swizzled shared memory, and O += P V with P in registers and V N-major
(its rows are keys, head_dim contiguous). This probe runs one warpgroup of each on known data
with the descriptor encodings that the PTX ISA's layout section implies, checks every element
against torch, and prints which encodings hold (run from the repository root on an sm_90 GPU):

    python scripts/wgmma_probe.py

Element (r, c) of a [rows, 64] bf16 tile lives at byte r * 128 + ((c / 8) ^ (r % 8)) * 16 + (c % 8) * 2
(the 128-byte swizzle, tile base 1024-byte aligned); a descriptor holds the start address >> 4
(bits 0-13), LBO >> 4 (16-29), SBO >> 4 (32-45) and the swizzle mode (62-63, 1 = 128 bytes).
"""

from __future__ import annotations

import sys

SOURCE = r"""
__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return (unsigned)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ unsigned long long desc(unsigned addr, unsigned lbo, unsigned sbo) {
    return (unsigned long long)((addr >> 4) & 0x3FFF) | ((unsigned long long)((lbo >> 4) & 0x3FFF) << 16)
         | ((unsigned long long)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}
// element (r, c) of a [rows][64] bf16 tile, 128-byte swizzle
__device__ __forceinline__ int swz(int r, int c) { return r * 64 + (((c >> 3) ^ (r & 7)) << 3) + (c & 7); }

// S[64][128] = Q[64][64] K[128][64]^T: both K-major, 4 steps of k16 (start address + 32 bytes)
extern "C" __global__ void __launch_bounds__(128) probe_qk(const unsigned short* q, const unsigned short* k, float* s,
                                                           unsigned lbo, unsigned sbo) {
    extern __shared__ __align__(1024) unsigned char raw[];
    unsigned short* sq = reinterpret_cast<unsigned short*>(raw + ((1024 - (smem_u32(raw) & 1023)) & 1023));
    unsigned short* sk = sq + 64 * 64;
    for (int i = threadIdx.x; i < 64 * 64; i += 128) sq[swz(i / 64, i % 64)] = q[i];
    for (int i = threadIdx.x; i < 128 * 64; i += 128) sk[swz(i / 64, i % 64)] = k[i];
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    float d[64];
    #pragma unroll
    for (int i = 0; i < 64; ++i) d[i] = 0.0f;
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    #pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        unsigned long long da = desc(smem_u32(sq) + kk * 32, lbo, sbo), db = desc(smem_u32(sk) + kk * 32, lbo, sbo);
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
            "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
            "%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,"
            "%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
              "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
              "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
              "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
              "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
              "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
            : "l"(da), "l"(db));
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    // the accumulator: warp w rows 16 w.., lane 4 g + t: rows g, g + 8, columns 8 j + 2 t, + 1
    const int w = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    #pragma unroll
    for (int j = 0; j < 16; ++j) {
        s[(16 * w + g) * 128 + 8 * j + 2 * t] = d[4 * j];
        s[(16 * w + g) * 128 + 8 * j + 2 * t + 1] = d[4 * j + 1];
        s[(16 * w + g + 8) * 128 + 8 * j + 2 * t] = d[4 * j + 2];
        s[(16 * w + g + 8) * 128 + 8 * j + 2 * t + 1] = d[4 * j + 3];
    }
}

// O[64][64] = P[64][128] V[128][64]: P from registers (mma.sync's A fragments), V N-major
// (transposed B), 8 steps of k16 (start address + 16 key rows = 2048 bytes)
extern "C" __global__ void __launch_bounds__(128) probe_pv(const unsigned short* p, const unsigned short* v, float* o,
                                                           unsigned lbo, unsigned sbo) {
    extern __shared__ __align__(1024) unsigned char raw[];
    unsigned short* sv = reinterpret_cast<unsigned short*>(raw + ((1024 - (smem_u32(raw) & 1023)) & 1023));
    for (int i = threadIdx.x; i < 128 * 64; i += 128) sv[swz(i / 64, i % 64)] = v[i];
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const int w = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    float d[32];
    #pragma unroll
    for (int i = 0; i < 32; ++i) d[i] = 0.0f;
    auto pair = [&](int r, int c) {
        return (unsigned)p[r * 128 + c] | ((unsigned)p[r * 128 + c + 1] << 16);
    };
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    #pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
        const unsigned a0 = pair(16 * w + g, 16 * kk + 2 * t), a1 = pair(16 * w + g + 8, 16 * kk + 2 * t);
        const unsigned a2 = pair(16 * w + g, 16 * kk + 8 + 2 * t), a3 = pair(16 * w + g + 8, 16 * kk + 8 + 2 * t);
        unsigned long long db = desc(smem_u32(sv) + kk * 2048, lbo, sbo);
        asm volatile(
            "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
            "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
            "%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
              "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
              "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
              "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db));
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    #pragma unroll
    for (int j = 0; j < 8; ++j) {
        o[(16 * w + g) * 64 + 8 * j + 2 * t] = d[4 * j];
        o[(16 * w + g) * 64 + 8 * j + 2 * t + 1] = d[4 * j + 1];
        o[(16 * w + g + 8) * 64 + 8 * j + 2 * t] = d[4 * j + 2];
        o[(16 * w + g + 8) * 64 + 8 * j + 2 * t + 1] = d[4 * j + 3];
    }
}
"""

# (LBO, SBO) in bytes to try: the first of each is what the PTX ISA's layout section implies
QK_ENCODINGS = [(16, 1024), (1024, 1024), (1024, 16)]
PV_ENCODINGS = [(16, 1024), (1024, 1024), (8192, 1024), (1024, 16), (1024, 2048)]


def main() -> int:
    import cupy
    import torch

    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        print(f"wgmma needs sm_90 (this GPU: sm_{major}{minor})")
        return 1
    # NVRTC directly: wgmma needs the arch-specific target (sm_90a), which CuPy's RawModule
    # adds no option for; whether RawModule takes it as an option is printed too (the runtime's
    # compile path would need that)
    from cupy.cuda import function, nvrtc

    prog = nvrtc.createProgram(SOURCE, "wgmma_probe.cu", [], [])
    try:
        nvrtc.compileProgram(prog, ["-std=c++17", "-arch=sm_90a"])
    except nvrtc.NVRTCError:
        print(nvrtc.getProgramLog(prog))
        return 1
    module = function.Module()
    module.load(nvrtc.getCUBIN(prog))
    qk, pv = module.get_function("probe_qk"), module.get_function("probe_pv")
    try:
        cupy.RawModule(code=SOURCE, options=("-std=c++17", "-arch=sm_90a"), backend="nvrtc").get_function("probe_qk")
        print("cupy.RawModule with -arch=sm_90a: compiles")
    except Exception as exc:  # noqa: BLE001 - reported: the runtime would need another compile path
        print(f"cupy.RawModule with -arch=sm_90a: {type(exc).__name__}: {str(exc)[:200]}")
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(64, 64, device="cuda", generator=gen).bfloat16()
    k = torch.randn(128, 64, device="cuda", generator=gen).bfloat16()
    p = torch.rand(64, 128, device="cuda", generator=gen).bfloat16()
    v = torch.randn(128, 64, device="cuda", generator=gen).bfloat16()
    want_s = q.float() @ k.float().T
    want_o = p.float() @ v.float()
    ptr = lambda t: cupy.uint64(t.data_ptr())  # noqa: E731
    ok = []
    for lbo, sbo in QK_ENCODINGS:
        s = torch.full((64, 128), float("nan"), device="cuda")
        qk((1,), (128,), (ptr(q.view(torch.int16)), ptr(k.view(torch.int16)), ptr(s), cupy.uint32(lbo), cupy.uint32(sbo)),
           shared_mem=(64 + 128) * 128 + 1024)
        torch.cuda.synchronize()
        err = float((s - want_s).abs().max())
        print(f"q k^T  K-major  LBO {lbo:5d} SBO {sbo:5d}: max error {err:.3g}")
        ok.append(err < 1e-2)
    for lbo, sbo in PV_ENCODINGS:
        o = torch.full((64, 64), float("nan"), device="cuda")
        pv((1,), (128,), (ptr(p.view(torch.int16)), ptr(v.view(torch.int16)), ptr(o), cupy.uint32(lbo), cupy.uint32(sbo)),
           shared_mem=128 * 128 + 1024)
        torch.cuda.synchronize()
        err = float((o - want_o).abs().max())
        print(f"p v    N-major  LBO {lbo:5d} SBO {sbo:5d}: max error {err:.3g}")
        ok.append(err < 1e-2)
    return 0 if any(ok[:len(QK_ENCODINGS)]) and any(ok[len(QK_ENCODINGS):]) else 1


if __name__ == "__main__":
    sys.exit(main())
