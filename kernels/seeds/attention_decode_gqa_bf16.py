"""Split-KV decoding for grouped-query attention over a static bf16 cache with per-sequence lengths.

Hand-written seed for a task the rule proposer does not translate (masked, grouped heads).
Block (x = one (batch, KV head), y = one range of BLOCK cache positions) reads each key and
value row once for all ``group`` query heads that share it, in three phases: scores (a
thread per position, its K row in registers, q from shared memory); softmax statistics per
query head (a warp per head, over shared memory); weighted values (threads split positions
and head_dim, several rows in flight each). With several ranges, the last block of a
(batch, KV head) to finish merges the ranges' (max, sum, values) states: no second launch.
At decode sizes the time is the chain of memory round trips, so every load is issued
unconditionally and masked afterwards: the lengths first (no kernel writes them), then every
K and V row of the range below the length, before ``griddepcontrol.wait``; q after it. Under
programmatic dependent launch (the engine's fused step) the kernel before may still be
appending the newest position (length - 1), so that row is read again after the wait;
launched plainly, the wait returns at once. The number of ranges depends only on the shapes,
never on ``cache_len``, so one CUDA graph serves every decode step; a range past a sequence's
length contributes nothing. ``prefetch_next`` (an engine's hint) names bytes the next kernel
reads, prefetched into L2 as this one drains.
"""
# TASK: kernels/tasks/decode/attention_decode_gqa_bf16.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module, pdl_launch

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 64
#endif
#ifndef KEYS
#define KEYS 1
#endif
#ifndef VEC
#define VEC 8
#endif
#ifndef MAXD
#define MAXD 128
#endif
#define NW (BLOCK / 32)
#define CHUNK (BLOCK * KEYS)
#define NPL 8      // position lanes of the weighted-values phase (bounds shared memory)
#define UNROLL 8   // value rows each of them has in flight (past the first VROWS)
#ifndef VROWS
#define VROWS 16  // value rows each position lane loads with the K rows (16-byte pieces)
#endif
#define NEG_INF __int_as_float(0xff800000)
#if !defined(__CUDA_ARCH__)  // the CPU emulator of the tests runs blocks one after another
#define __ldg(p) (*(p))
#define __ldcg(p) (*(p))
#define __expf expf
#define __threadfence()
__device__ __forceinline__ int atomicAdd(int* p, int v) { const int old = *p; *p = old + v; return old; }
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

// W consecutive bf16 (aligned to 2 * W bytes), held as loaded (packed: half the registers of
// floats), converted where they are used.
template <int W> struct Raw;
template <> struct Raw<1> { unsigned short w; };
template <> struct Raw<2> { unsigned int w; };
template <> struct Raw<4> { uint2 w; };
template <> struct Raw<8> { uint4 w; };
template <int W> __device__ __forceinline__ Raw<W> ld_raw(const unsigned short* __restrict__ p) {
    Raw<W> r;
    if constexpr (W == 1) r.w = __ldg(p);
    else if constexpr (W == 2) r.w = __ldg(reinterpret_cast<const unsigned int*>(p));
    else if constexpr (W == 4) r.w = __ldg(reinterpret_cast<const uint2*>(p));
    else r.w = __ldg(reinterpret_cast<const uint4*>(p));
    return r;
}
template <int W> __device__ __forceinline__ void unpack(const Raw<W>& r, float* f) {
    if constexpr (W == 1) {
        f[0] = __uint_as_float(((unsigned int)r.w) << 16);
    } else if constexpr (W == 2) {
        f[0] = bf_lo(r.w); f[1] = bf_hi(r.w);
    } else if constexpr (W == 4) {
        f[0] = bf_lo(r.w.x); f[1] = bf_hi(r.w.x); f[2] = bf_lo(r.w.y); f[3] = bf_hi(r.w.y);
    } else {
        f[0] = bf_lo(r.w.x); f[1] = bf_hi(r.w.x); f[2] = bf_lo(r.w.y); f[3] = bf_hi(r.w.y);
        f[4] = bf_lo(r.w.z); f[5] = bf_hi(r.w.z); f[6] = bf_lo(r.w.w); f[7] = bf_hi(r.w.w);
    }
}
template <int W> __device__ __forceinline__ void load_bf(const unsigned short* __restrict__ p, float* f) {
    unpack<W>(ld_raw<W>(p), f);
}

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// This warp's share (warp gw of tw) of a byte range the NEXT kernel reads, into L2 (a hint).
__device__ __forceinline__ void prefetch_share(const unsigned short* p, long long bytes, long long gw, long long tw,
                                               int lane) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (p == 0 || bytes < 16) return;
    const long long granules = bytes >> 4;
    const long long per = (granules + tw - 1) / tw;
    const long long g0 = gw * per;
    const long long g1 = g0 + per < granules ? g0 + per : granules;
    const char* base = reinterpret_cast<const char*>(p);
    for (long long g = g0 + (long long)lane * 256; g < g1; g += 32 * 256) {
        const long long n = g1 - g < 256 ? g1 - g : 256;
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(base + (g << 4)), "r"((unsigned int)(n << 4))
                     : "memory");
    }
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <int GG>
struct GqaShared {
    float q[GG][MAXD];          // the group's queries, fp32
    float p[GG][CHUNK];         // scores, then exp(score - max)
    float acc[NPL][GG][MAXD];   // each position lane's weighted values
    float m[GG], s[GG];         // per query head: max score, sum of exp
    int last;                   // this block merges the ranges
};

// GG: the group size rounded up to a power of two; W: the vector width of row loads.
template <int GG, int W>
__device__ __forceinline__ void gqa_body(GqaShared<GG>& sh, const unsigned short* __restrict__ q,
                                         const unsigned short* __restrict__ k, const unsigned short* __restrict__ v,
                                         const long long* __restrict__ lens, unsigned short* __restrict__ out,
                                         float* __restrict__ part, int* __restrict__ counters, float scale,
                                         int kv_heads, int G, long long L, int D,
                                         const unsigned short* __restrict__ pf0, long long pf0_bytes,
                                         const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int splits = gridDim.y;
    const long long bkv = blockIdx.x;                     // batch * kv_heads + kv head
    // Every load below is unconditional (addresses clamped into the tensors, unused values
    // masked afterwards): a load under a branch waits for the one before it, and this
    // kernel's time at decode sizes is its chain of memory round trips. The K and V rows go
    // first, before the kernel that writes q may have finished (programmatic dependent
    // launch): all of this block's cache bytes are in flight in the first round trip.
    // (Narrow pieces, for unaligned tensors, leave too few registers to hold rows across the
    // wait: that path waits first.)
    constexpr bool EARLY = W >= 4;
    if (!EARLY) pdl_wait();
    const long long k0 = (long long)blockIdx.y * CHUNK;
    const int avail = (int)(L - k0 < CHUNK ? L - k0 : CHUNK);  // positions of this range inside the cache
    const unsigned short* __restrict__ kb = k + (bkv * L + k0) * D;
    const unsigned short* __restrict__ vb = v + (bkv * L + k0) * D;
    // The lengths are never written by a kernel: read first, so that rows past a sequence's
    // length are not fetched (a static cache is mostly empty early in a generation).
    const long long len = lens[bkv / kv_heads] < L ? lens[bkv / kv_heads] : L;
    const int live = (int)(k0 < len ? (len - k0 < avail ? len - k0 : avail) : 0);  // rows of this range to read
    // K rows of phase 1 (thread t: position t), rows past them read row 0
    Raw<W> kr[KEYS][MAXD / W];
    #pragma unroll
    for (int j = 0; j < KEYS; ++j) {
        const int t = j * BLOCK + tid;
        #pragma unroll
        for (int i = 0; i < MAXD / W; ++i)
            kr[j][i] = ld_raw<W>(kb + (long long)(t < live ? t : 0) * D + (i * W < D ? i * W : 0));
    }
    // V rows of phase 3: thread = (position lane pl, piece c of W elements of head_dim); lane pl
    // takes positions pl, pl + PL, ...; the first VROWS of them are loaded here, with K.
    const int DC = (D + W - 1) / W;
    const int DCE = DC < BLOCK ? DC : BLOCK;          // pieces per pass (several passes: scalar, long heads)
    const int PL = BLOCK / DCE < NPL ? BLOCK / DCE : NPL;
    const int pl = tid / DCE;
    const bool vlane = pl < PL;
    // rows held: fewer for narrower pieces and for 8 query heads per KV head (their sums need the registers)
    constexpr int VR = VROWS * W / (GG >= 8 ? 16 : 8) > 0 ? VROWS * W / (GG >= 8 ? 16 : 8) : 1;
    Raw<W> vr[VR];
    #pragma unroll
    for (int u = 0; u < VR; ++u) {
        const int t = pl + u * PL;
        vr[u] = ld_raw<W>(vb + (long long)(vlane && t < live ? t : 0) * D + (tid % DCE) * W);
    }
    if (EARLY) pdl_wait();       // q and the newest cache row are the kernel before's output
    pdl_launch_dependents();
    const unsigned short* __restrict__ qb = q + bkv * G * D;
    constexpr int QN = (GG * MAXD + BLOCK - 1) / BLOCK;
    float qv[QN];
    #pragma unroll
    for (int j = 0; j < QN; ++j) {  // all of q's loads in flight at once
        const int i = j * BLOCK + tid;
        qv[j] = bf_lo(__ldg(qb + (i < G * D ? i : 0)));
    }
    // The newest position (len - 1) may have been appended by the kernel before, after the
    // loads above were issued: its K and V pieces are read again, now that it is complete.
    const long long newest = len - 1 - k0;
    if (EARLY && newest >= 0 && newest < CHUNK) {
        #pragma unroll
        for (int j = 0; j < KEYS; ++j)
            if (j * BLOCK + tid == newest) {
                #pragma unroll
                for (int i = 0; i < MAXD / W; ++i)
                    kr[j][i] = ld_raw<W>(kb + newest * D + (i * W < D ? i * W : 0));
            }
        if (vlane) {
            #pragma unroll
            for (int u = 0; u < VR; ++u)
                if (pl + u * PL == newest) vr[u] = ld_raw<W>(vb + newest * D + (tid % DCE) * W);
        }
    }
    const int n = (int)(k0 < len ? (len - k0 < CHUNK ? len - k0 : CHUNK) : 0);  // positions in this range
    #pragma unroll
    for (int j = 0; j < QN; ++j) {
        const int i = j * BLOCK + tid;
        if (i < G * D) sh.q[i / D][i % D] = qv[j];
    }
    __syncthreads();
    // 1. scores: thread t takes positions t, t + BLOCK, ...
    #pragma unroll
    for (int j = 0; j < KEYS; ++j) {
        const int t = j * BLOCK + tid;
        float dot[GG];
        #pragma unroll
        for (int g = 0; g < GG; ++g) dot[g] = 0.0f;
        #pragma unroll
        for (int i = 0; i < MAXD / W; ++i) {
            if (i * W < D) {  // no load in here: only arithmetic on values already in registers
                float kf[W];
                unpack<W>(kr[j][i], kf);
                #pragma unroll
                for (int g = 0; g < GG; ++g)
                    #pragma unroll
                    for (int w = 0; w < W; ++w) dot[g] = fmaf(sh.q[g][i * W + w], kf[w], dot[g]);
            }
        }
        #pragma unroll
        for (int g = 0; g < GG; ++g) sh.p[g][t] = t < n ? dot[g] * scale : NEG_INF;
    }
    __syncthreads();
    // 2. per query head: max, exp, sum (a warp per head)
    for (int g = warp; g < G; g += NW) {
        float mx = NEG_INF;
        for (int t = lane; t < CHUNK; t += 32) mx = fmaxf(mx, sh.p[g][t]);
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int t = lane; t < CHUNK; t += 32) {
            const float e = t < n ? __expf(sh.p[g][t] - mx) : 0.0f;
            sh.p[g][t] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        if (lane == 0) { sh.m[g] = mx; sh.s[g] = sum; }
    }
    __syncthreads();
    // 3. weighted values: the rows already in registers, then (long ranges, narrow pieces) the
    //    rest UNROLL rows at a time; then further passes over head_dim where DC > BLOCK.
    for (int c0 = 0; c0 < DC; c0 += DCE) {
        const int c = c0 + tid % DCE, d0 = c * W;
        const bool active = vlane && c < DC;
        float acc[GG][W];
        #pragma unroll
        for (int g = 0; g < GG; ++g)
            #pragma unroll
            for (int w = 0; w < W; ++w) acc[g][w] = 0.0f;
        if (active) {
            int t0 = pl;
            if (c0 == 0) {
                #pragma unroll
                for (int u = 0; u < VR; ++u) {
                    const int t = pl + u * PL;
                    if (t < n) {  // rows past n (possibly never written: not even 0 * NaN) are skipped
                        float vf[W];
                        unpack<W>(vr[u], vf);
                        #pragma unroll
                        for (int g = 0; g < GG; ++g) {
                            const float pr = sh.p[g][t];
                            #pragma unroll
                            for (int w = 0; w < W; ++w) acc[g][w] = fmaf(pr, vf[w], acc[g][w]);
                        }
                    }
                }
                t0 = pl + VR * PL;
            }
            for (; t0 < n; t0 += UNROLL * PL) {
                float vv[UNROLL][W];
                #pragma unroll
                for (int u = 0; u < UNROLL; ++u) {  // unconditional: rows past n read row 0, not used
                    const int t = t0 + u * PL;
                    load_bf<W>(vb + (long long)(t < n ? t : 0) * D + d0, vv[u]);
                }
                #pragma unroll
                for (int u = 0; u < UNROLL; ++u) {
                    const int t = t0 + u * PL;
                    if (t < n) {
                        #pragma unroll
                        for (int g = 0; g < GG; ++g) {
                            const float pr = sh.p[g][t];
                            #pragma unroll
                            for (int w = 0; w < W; ++w) acc[g][w] = fmaf(pr, vv[u][w], acc[g][w]);
                        }
                    }
                }
            }
            #pragma unroll
            for (int g = 0; g < GG; ++g)
                #pragma unroll
                for (int w = 0; w < W; ++w)
                    if (d0 + w < D) sh.acc[pl][g][d0 + w] = acc[g][w];
        }
    }
    __syncthreads();
    for (int i = tid; i < G * D; i += BLOCK) {
        const int g = i / D, d = i - g * D;
        float o = 0.0f;
        for (int r = 0; r < PL; ++r) o += sh.acc[r][g][d];
        const long long row = bkv * G + g;                 // flat (batch, query head)
        if (splits == 1) {
            out[row * D + d] = to_bf(o / sh.s[g]);
        } else {
            float* __restrict__ slot = part + (row * splits + blockIdx.y) * (D + 2);
            slot[2 + d] = o;
            if (d == 0) { slot[0] = sh.m[g]; slot[1] = sh.s[g]; }
        }
    }
    {   // the next kernel's bytes into L2 while this one merges and drains (hints; 0 bytes: none)
        const long long tw = (long long)gridDim.x * gridDim.y * NW;
        const long long gw = ((long long)blockIdx.y * gridDim.x + blockIdx.x) * NW + warp;
        prefetch_share(pf0, pf0_bytes, gw, tw, lane);
        prefetch_share(pf1, pf1_bytes, gw, tw, lane);
    }
    if (splits == 1) return;
    // 4. the last range of this (batch, KV head) to finish merges them all
    __threadfence();
    __syncthreads();
    if (tid == 0) sh.last = atomicAdd(counters + bkv, 1) == splits - 1;
    __syncthreads();
    if (!sh.last) return;
    __threadfence();
    // per query head (a warp each): M = max of the ranges' maxima; each range's weight
    // exp(m_r - M) into shared memory (sh.p is free now); S = the weighted sums
    for (int g = warp; g < G; g += NW) {
        const float* __restrict__ pg = part + (bkv * G + g) * splits * (D + 2);
        float mx = NEG_INF;
        const int r0 = lane < splits ? lane : 0;   // up to 32 ranges: (m, s) read once, in one round trip
        const float m0 = __ldcg(pg + r0 * (D + 2)), s0 = __ldcg(pg + r0 * (D + 2) + 1);
        if (lane < splits) mx = m0;
        for (int r = lane + 32; r < splits; r += 32) mx = fmaxf(mx, __ldcg(pg + r * (D + 2)));
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int r = lane; r < splits; r += 32) {
            const float mr = r == lane ? m0 : __ldcg(pg + r * (D + 2));
            const float wr = mr == NEG_INF ? 0.0f : __expf(mr - mx);
            if (r < CHUNK) sh.p[g][r] = wr;
            sum = fmaf(r == lane ? s0 : __ldcg(pg + r * (D + 2) + 1), wr, sum);
        }
        sum = warp_sum(sum);
        if (lane == 0) { sh.m[g] = mx; sh.s[g] = sum; }
    }
    __syncthreads();
    if (splits <= CHUNK) {
        // The weights are in shared memory. Each thread owns OI outputs (i = tid + j * BLOCK) and
        // reads, four ranges at a time, all their partial values at once: OI * 4 loads in flight,
        // instead of a round trip per output.
        constexpr int OI = (GG * MAXD + BLOCK - 1) / BLOCK;
        float o[OI];
        #pragma unroll
        for (int j = 0; j < OI; ++j) o[j] = 0.0f;
        for (int r0 = 0; r0 < splits; r0 += 4) {
            float pv[4][OI];
            #pragma unroll
            for (int u = 0; u < 4; ++u)
                #pragma unroll
                for (int j = 0; j < OI; ++j) {
                    const int i = j * BLOCK + tid, r = r0 + u < splits ? r0 + u : splits - 1;
                    const int ii = i < G * D ? i : 0;
                    pv[u][j] = __ldcg(part + ((bkv * G + ii / D) * splits + r) * (D + 2) + 2 + ii % D);
                }
            #pragma unroll
            for (int u = 0; u < 4; ++u)
                #pragma unroll
                for (int j = 0; j < OI; ++j) {
                    const int i = j * BLOCK + tid;
                    if (r0 + u < splits && i < G * D) o[j] = fmaf(pv[u][j], sh.p[i / D][r0 + u], o[j]);
                }
        }
        #pragma unroll
        for (int j = 0; j < OI; ++j) {
            const int i = j * BLOCK + tid;
            if (i < G * D) out[(bkv * G + i / D) * D + i % D] = to_bf(o[j] / sh.s[i / D]);
        }
    } else for (int i = tid; i < G * D; i += BLOCK) {
        const int g = i / D, d = i - g * D;
        const long long row = bkv * G + g;
        const float* __restrict__ ranges = part + row * splits * (D + 2);  // [splits][m, s, values...]
        float o = 0.0f;
        {
            const float M = sh.m[g];
            #pragma unroll 8
            for (int r = 0; r < splits; ++r) {
                const float mr = __ldcg(ranges + r * (D + 2));
                const float orr = __ldcg(ranges + r * (D + 2) + 2 + d);
                o = mr == NEG_INF ? o : fmaf(orr, __expf(mr - M), o);
            }
        }
        out[row * D + d] = to_bf(o / sh.s[g]);
    }
    if (tid == 0) counters[bkv] = 0;                   // ready for the next call
}

template <int GG>
__device__ __forceinline__ void gqa_entry(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                                          const unsigned short* __restrict__ v, const long long* __restrict__ lens,
                                          unsigned short* __restrict__ out, float* __restrict__ part,
                                          int* __restrict__ counters, float scale, int kv_heads, int G, long long L,
                                          int D, int vec, const unsigned short* __restrict__ pf0, long long pf0_bytes,
                                          const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    __shared__ GqaShared<GG> sh;
    if (vec) gqa_body<GG, VEC>(sh, q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, pf0, pf0_bytes, pf1,
                                pf1_bytes);
    else gqa_body<GG, 1>(sh, q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, pf0, pf0_bytes, pf1,
                               pf1_bytes);
}

// One kernel per group size (1, 2, 4, 8: the group rounded up to a power of two), so that
// registers and shared memory are sized by the group actually run.
// Written out, not generated by a macro: the runtime reads each kernel's signature from the source.
extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g1(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    gqa_entry<1>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g2(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    gqa_entry<2>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g4(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    gqa_entry<4>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g8(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    gqa_entry<8>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
}
'''
PARAMS = {"BLOCK": [64, 128], "VEC": [2, 4, 8]}


def _hints(ranges, like):
    """The kernel's last four arguments from ``prefetch_next``: up to two (tensor, bytes) ranges
    the next kernel will read, prefetched into L2 as this one drains (a hint: values unchanged)."""
    out = []
    for t, nbytes in list(ranges)[:2]:
        ok = t.device == like.device and t.data_ptr() % 16 == 0
        out += [t, min(int(nbytes), t.numel() * t.element_size()) if ok else 0]
    while len(out) < 4:
        out += [like, 0]
    return tuple(out)


class ModelNew(nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)

    def __init__(self, BLOCK: int = 128, VEC: int = 8):  # 128: measured faster on the H200 (step sweep)
        super().__init__()
        KEYS = 1  # positions per thread in the scores phase (their K rows are held in registers)
        self.block, self.chunk, self.vec = BLOCK, BLOCK * KEYS, VEC
        self.maxd, self.maxg = 128, 8
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK, "KEYS": KEYS, "VEC": VEC, "MAXD": self.maxd})
        # Arrival counters of the last-block merge, one per (batch, KV head); the merging
        # block resets its own, so they are zero between calls (and between graph replays).
        self.counters = None

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
        splits = -(-max_len // self.chunk)  # from the shapes alone: graph-safe
        if self.counters is None or self.counters.numel() < b * kv_heads or self.counters.device != q.device:
            self.counters = torch.zeros(b * kv_heads, dtype=torch.int32, device=q.device)
        vec = int(d % self.vec == 0 and all(t.data_ptr() % (2 * self.vec) == 0 for t in (q, k_cache, v_cache)))
        part = torch.empty(b * h * splits * (d + 2) if splits > 1 else 1, dtype=torch.float32, device=q.device)
        kernel = f"gqa_decode_g{1 << (group - 1).bit_length()}"
        pdl_launch(self.module, kernel, grid=(b * kv_heads, splits), block=(self.block,),
                   args=(q, k_cache, v_cache, cache_len, out, part, self.counters, d ** -0.5, kv_heads, group,
                         max_len, d, vec) + _hints(self.prefetch_next, q))
        return out
