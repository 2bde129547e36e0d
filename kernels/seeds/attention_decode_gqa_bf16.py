"""Flash-decoding for grouped-query attention over a static bf16 cache with per-sequence lengths.

Hand-written seed for a task the rule proposer does not translate (masked, grouped heads).
Block (x = one (batch, KV head), y = one range of cache positions) reads each key and value
row once for all ``group`` query heads that share it. Warp w takes positions w, w + NW, ...
KEYS at a time; lanes split head_dim in pieces of W bf16 (W = VEC when the rows are aligned,
else 1); each query head's dot product is a warp sum; each warp keeps an online softmax
(max, sum) and its lanes' slice of the weighted values per query head. Warps merge through
shared memory. With several position ranges, ``gqa_combine`` merges the ranges' states.
The number of ranges depends only on the shapes, never on ``cache_len``, so one CUDA graph
serves every decode step; a range past a sequence's length does no work.
"""
# TASK: kernels/tasks/decode/attention_decode_gqa_bf16.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 128
#endif
#ifndef KEYS
#define KEYS 2
#endif
#ifndef VEC
#define VEC 4
#endif
#ifndef MAXD
#define MAXD 128
#endif
#define NEG_INF __int_as_float(0xff800000)
#if !defined(__CUDA_ARCH__)  // the CPU emulator of the tests
#define __ldg(p) (*(p))
#define __expf expf
#endif

__device__ __forceinline__ float bf_lo(unsigned int w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf_hi(unsigned int w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ unsigned short to_bf(float v) {  // round to nearest even
#if defined(__CUDA_ARCH__)
    unsigned short r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(v));
    return r;
#else
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
#endif
}

// W consecutive bf16 at p (aligned to 2 * W bytes) as floats.
template <int W> __device__ __forceinline__ void load_bf(const unsigned short* __restrict__ p, float* f);
template <> __device__ __forceinline__ void load_bf<1>(const unsigned short* __restrict__ p, float* f) {
    f[0] = bf_lo(__ldg(p));
}
template <> __device__ __forceinline__ void load_bf<2>(const unsigned short* __restrict__ p, float* f) {
    const unsigned int w = __ldg(reinterpret_cast<const unsigned int*>(p));
    f[0] = bf_lo(w); f[1] = bf_hi(w);
}
template <> __device__ __forceinline__ void load_bf<4>(const unsigned short* __restrict__ p, float* f) {
    const uint2 w = __ldg(reinterpret_cast<const uint2*>(p));
    f[0] = bf_lo(w.x); f[1] = bf_hi(w.x); f[2] = bf_lo(w.y); f[3] = bf_hi(w.y);
}
template <> __device__ __forceinline__ void load_bf<8>(const unsigned short* __restrict__ p, float* f) {
    const uint4 w = __ldg(reinterpret_cast<const uint4*>(p));
    f[0] = bf_lo(w.x); f[1] = bf_hi(w.x); f[2] = bf_lo(w.y); f[3] = bf_hi(w.y);
    f[4] = bf_lo(w.z); f[5] = bf_hi(w.z); f[6] = bf_lo(w.w); f[7] = bf_hi(w.w);
}

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// GG: the group size rounded up to a power of two; q heads g >= G are skipped.
template <int W, int GG>
__device__ __forceinline__ void gqa_body(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                                         const unsigned short* __restrict__ v, const long long* __restrict__ lens,
                                         unsigned short* __restrict__ out, float* __restrict__ part, float scale,
                                         int kv_heads, int G, long long L, int D, long long chunk,
                                         float (*sm_m)[GG], float (*sm_s)[GG], float (*sm_acc)[GG][MAXD])
{
    constexpr int NW = BLOCK / 32;
    constexpr int P = (MAXD + 32 * W - 1) / (32 * W);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long bkv = blockIdx.x;                 // batch * kv_heads + kv head
    const long long len = lens[bkv / kv_heads] < L ? lens[bkv / kv_heads] : L;
    const long long k0 = (long long)blockIdx.y * chunk;
    const long long k1 = k0 + chunk < len ? k0 + chunk : len;
    const unsigned short* __restrict__ kb = k + bkv * L * D;
    const unsigned short* __restrict__ vb = v + bkv * L * D;
    const unsigned short* __restrict__ qb = q + bkv * G * D;  // the group's query heads, consecutive
    float qv[GG][P][W], acc[GG][P][W], m[GG], s[GG];
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        m[g] = NEG_INF; s[g] = 0.0f;
        #pragma unroll
        for (int p = 0; p < P; ++p) {
            const int d0 = (p * 32 + lane) * W;
            #pragma unroll
            for (int w = 0; w < W; ++w) { qv[g][p][w] = 0.0f; acc[g][p][w] = 0.0f; }
            if (g < G && d0 < D) load_bf<W>(qb + g * D + d0, qv[g][p]);
        }
    }
    for (long long l0 = k0 + warp; l0 < k1; l0 += (long long)NW * KEYS) {
        float dot[KEYS][GG];
        #pragma unroll
        for (int t = 0; t < KEYS; ++t) {
            const long long l = l0 + (long long)t * NW;
            #pragma unroll
            for (int g = 0; g < GG; ++g) dot[t][g] = 0.0f;
            if (l < k1) {
                #pragma unroll
                for (int p = 0; p < P; ++p) {
                    const int d0 = (p * 32 + lane) * W;
                    if (d0 < D) {
                        float kk[W];
                        load_bf<W>(kb + l * D + d0, kk);
                        #pragma unroll
                        for (int g = 0; g < GG; ++g)
                            #pragma unroll
                            for (int w = 0; w < W; ++w) dot[t][g] = fmaf(qv[g][p][w], kk[w], dot[t][g]);
                    }
                }
            }
        }
        #pragma unroll
        for (int t = 0; t < KEYS; ++t) {
            const long long l = l0 + (long long)t * NW;
            if (l >= k1) break;
            float vv[P][W];
            #pragma unroll
            for (int p = 0; p < P; ++p) {
                const int d0 = (p * 32 + lane) * W;
                #pragma unroll
                for (int w = 0; w < W; ++w) vv[p][w] = 0.0f;
                if (d0 < D) load_bf<W>(vb + l * D + d0, vv[p]);
            }
            #pragma unroll
            for (int g = 0; g < GG; ++g) {
                if (g >= G) break;
                const float sc = warp_sum(dot[t][g]) * scale;
                const float mn = fmaxf(m[g], sc);
                const float corr = m[g] == NEG_INF ? 0.0f : __expf(m[g] - mn);
                const float pr = __expf(sc - mn);
                s[g] = s[g] * corr + pr;
                m[g] = mn;
                #pragma unroll
                for (int p = 0; p < P; ++p)
                    #pragma unroll
                    for (int w = 0; w < W; ++w) acc[g][p][w] = fmaf(pr, vv[p][w], acc[g][p][w] * corr);
            }
        }
    }
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        if (g >= G) break;
        if (lane == 0) { sm_m[warp][g] = m[g]; sm_s[warp][g] = s[g]; }
        #pragma unroll
        for (int p = 0; p < P; ++p) {
            const int d0 = (p * 32 + lane) * W;
            #pragma unroll
            for (int w = 0; w < W; ++w)
                if (d0 + w < D) sm_acc[warp][g][d0 + w] = acc[g][p][w];
        }
    }
    __syncthreads();
    const bool direct = gridDim.y == 1;
    for (int i = threadIdx.x; i < G * D; i += BLOCK) {
        const int g = i / D, d = i - g * D;
        float M = NEG_INF;
        #pragma unroll
        for (int w = 0; w < NW; ++w) M = fmaxf(M, sm_m[w][g]);
        float S = 0.0f, o = 0.0f;
        if (M != NEG_INF) {
            #pragma unroll
            for (int w = 0; w < NW; ++w) {
                if (sm_m[w][g] == NEG_INF) continue;
                const float c = __expf(sm_m[w][g] - M);
                S = fmaf(sm_s[w][g], c, S);
                o = fmaf(sm_acc[w][g][d], c, o);
            }
        }
        const long long row = bkv * G + g;            // flat (batch, query head)
        if (direct) {
            out[row * D + d] = to_bf(o / S);
        } else {
            float* __restrict__ slot = part + (row * gridDim.y + blockIdx.y) * (D + 2);
            slot[2 + d] = o;
            if (d == 0) { slot[0] = M; slot[1] = S; }
        }
    }
}

// The shared state of one block; one instantiation per kernel below.
template <int GG>
__device__ __forceinline__ void gqa_entry(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                                          const unsigned short* __restrict__ v, const long long* __restrict__ lens,
                                          unsigned short* __restrict__ out, float* __restrict__ part, float scale,
                                          int kv_heads, int G, long long L, int D, long long chunk, int vec)
{
    __shared__ float sm_m[BLOCK / 32][GG], sm_s[BLOCK / 32][GG];
    __shared__ float sm_acc[BLOCK / 32][GG][MAXD];
    if (vec) gqa_body<VEC, GG>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, sm_m, sm_s, sm_acc);
    else gqa_body<1, GG>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, sm_m, sm_s, sm_acc);
}

// One kernel per group size (1, 2, 4, 8: the group rounded up to a power of two), so that
// registers and shared memory are sized by the group actually run.
extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_main_g1(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
            const unsigned short* __restrict__ v, const long long* __restrict__ lens, unsigned short* __restrict__ out,
            float* __restrict__ part, float scale, int kv_heads, int G, long long L, int D, long long chunk, int vec)
{
    gqa_entry<1>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, vec);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_main_g2(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
            const unsigned short* __restrict__ v, const long long* __restrict__ lens, unsigned short* __restrict__ out,
            float* __restrict__ part, float scale, int kv_heads, int G, long long L, int D, long long chunk, int vec)
{
    gqa_entry<2>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, vec);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_main_g4(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
            const unsigned short* __restrict__ v, const long long* __restrict__ lens, unsigned short* __restrict__ out,
            float* __restrict__ part, float scale, int kv_heads, int G, long long L, int D, long long chunk, int vec)
{
    gqa_entry<4>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, vec);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_main_g8(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
            const unsigned short* __restrict__ v, const long long* __restrict__ lens, unsigned short* __restrict__ out,
            float* __restrict__ part, float scale, int kv_heads, int G, long long L, int D, long long chunk, int vec)
{
    gqa_entry<8>(q, k, v, lens, out, part, scale, kv_heads, G, L, D, chunk, vec);
}

// One block per (batch, query head): merge the ranges' (max, sum, weighted values).
extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_combine(const float* __restrict__ part, unsigned short* __restrict__ out, int splits, int D)
{
    const long long row = blockIdx.x;
    const float* __restrict__ pb = part + row * splits * (D + 2);
    float M = NEG_INF;
    for (int i = 0; i < splits; ++i) M = fmaxf(M, pb[i * (D + 2)]);
    float S = 0.0f;
    for (int i = 0; i < splits; ++i) {
        const float mi = pb[i * (D + 2)];
        if (mi != NEG_INF) S = fmaf(pb[i * (D + 2) + 1], __expf(mi - M), S);
    }
    for (int d = threadIdx.x; d < D; d += BLOCK) {
        float o = 0.0f;
        for (int i = 0; i < splits; ++i) {
            const float mi = pb[i * (D + 2)];
            if (mi != NEG_INF) o = fmaf(pb[i * (D + 2) + 2 + d], __expf(mi - M), o);
        }
        out[row * D + d] = to_bf(o / S);
    }
}
'''
PARAMS = {"BLOCK": [64, 128, 256], "KEYS": [1, 2, 4], "VEC": [2, 4, 8], "BLOCKS_PER_SM": [1, 2, 4]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 128, KEYS: int = 2, VEC: int = 4, BLOCKS_PER_SM: int = 2):
        super().__init__()
        self.block, self.vec, self.blocks_per_sm = BLOCK, VEC, BLOCKS_PER_SM
        self.maxd, self.maxg = 128, 8
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK, "KEYS": KEYS, "VEC": VEC, "MAXD": self.maxd})
        self.sms = None

    def forward(self, q, k_cache, v_cache, cache_len):
        b, h, d = q.shape
        kv_heads, max_len = k_cache.shape[1], k_cache.shape[2]
        group = h // kv_heads
        assert q.is_contiguous() and k_cache.is_contiguous() and v_cache.is_contiguous() and cache_len.is_contiguous()
        assert k_cache.shape == v_cache.shape == (b, kv_heads, max_len, d) and h == kv_heads * group
        assert d <= self.maxd and group <= self.maxg, "head_dim over 128 or more than 8 query heads per KV head"
        assert cache_len.dtype == torch.int64 and cache_len.shape == (b,)
        out = torch.empty_like(q)
        if out.numel() == 0 or max_len == 0:
            return out
        if self.sms is None:
            self.sms = torch.cuda.get_device_properties(q.device).multi_processor_count
        # Ranges from the shapes alone (graph-safe): enough blocks to fill the GPU, >= 64 positions each.
        want = max(1, -(-self.sms * self.blocks_per_sm // (b * kv_heads)))
        splits = max(1, min(want, max_len // 64))
        chunk = -(-max_len // splits)
        splits = -(-max_len // chunk)
        vec = int(d % self.vec == 0 and all(t.data_ptr() % (2 * self.vec) == 0 for t in (q, k_cache, v_cache)))
        part = torch.empty(b * h * splits * (d + 2) if splits > 1 else 1, dtype=torch.float32, device=q.device)
        kernel = f"gqa_main_g{1 << (group - 1).bit_length()}"
        self.module.launch(kernel, grid=(b * kv_heads, splits), block=(self.block,),
                           args=(q, k_cache, v_cache, cache_len, out, part, d ** -0.5, kv_heads, group, max_len, d,
                                 chunk, vec))
        if splits > 1:
            self.module.launch("gqa_combine", grid=(b * h,), block=(self.block,), args=(part, out, splits, d))
        return out
