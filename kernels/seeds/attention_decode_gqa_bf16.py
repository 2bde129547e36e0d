"""Split-KV decoding for grouped-query attention over a static bf16 cache with per-sequence lengths.

Hand-written seed for a task the rule proposer does not translate (masked, grouped heads). Two
paths, chosen by ``CLUSTER`` (a PARAM, so the search and scripts/decode_step_sweep.py compare them):

CLUSTER 0, the split kernel. Block (x = one (batch, KV head), y = one range of BLOCK cache
positions) reads each key and value row once for all ``group`` query heads that share it, in
three phases: scores (a thread per position, its K row in registers, q from shared memory);
softmax statistics per query head (a warp per head, over shared memory); weighted values
(threads split positions and head_dim, several rows in flight each). With several ranges, the
last block of a (batch, KV head) to finish (an atomic counter after a fence; it resets the
counter) merges the ranges' (max, sum, values) states through global memory.

CLUSTER 1, 2, 4, 8 (default 8), 16, the cluster kernel. The CLUSTER blocks of a thread-block cluster
(sm_90; compile-time ``__cluster_dims__``) split one (batch, KV head)'s cache into CLUSTER equal
ranges; head_dim / 8 lanes per position, each holding one 16-byte piece of its K and V rows
(KP positions a lane, all loaded before any is used); q in registers, pre-scaled by
scale * log2(e) for exp2; dot products and the (max, sum, values) states merged by warp
shuffles; the warps through shared memory (one barrier); the blocks through distributed
shared memory (each block merges its slice of the outputs from every rank's state). It serves
head_dim a multiple of 8 with 16-byte aligned tensors, and caches a block covers in at most
CHUNKS chunks of KP passes (each chunk one more round trip: 2048 positions for head_dim 64, 1024
for 128 at the defaults); the split kernel serves the rest (long caches: its many blocks keep
more bytes in flight). QSPLIT slices a KV head's query heads over that many clusters (each with
fewer heads to merge, reading the same K and V rows); by default as many as keep every cluster
resident at once (Llama-3.2-1B 2, Qwen2.5-1.5B 6: its two KV heads otherwise leave 116 of 132
SMs idle), with KP chosen from the shape.

Latency model: Llama-3.2-1B decode (batch 1, 32 heads over 8 KV heads, head_dim 64, a 768-position
cache, length 640), one call. Round trips to global memory in one dependent chain, ~0.6-1 us each
(DRAM or L2; a fence or an atomic is one too); a block barrier ~0.05 us; a cluster barrier ~0.2 us;
a distributed-shared-memory round trip ~0.15 us.

                                  split kernel (CLUSTER 0, BLOCK 128)    cluster kernel (CLUSTER 8, BLOCK 256, KP 4)
    launches                      1                                      1
    grid (132 SMs)                8 x 6 = 48 blocks of 128 threads       8 clusters x 8 = 64 blocks of 256 threads
    global round trips, chained   7: lengths -> K/V rows (their          1: lengths, K/V, q together (under PDL 2:
                                  addresses need the length; q with       lengths and K/V before the wait, q and the
                                  them) -> fence -> atomic -> merge      newest row after it)
                                  (max, sum) -> merge values x 2
    block barriers                7                                      1
    cluster barriers              0                                      2 (the exit one only delays the exit)
    DSMEM round trips             0                                      1
    shared-memory phases          q, scores, softmax, values, sums       warp states -> block state
    work a thread, in registers   64 LDS + 256 FMA (scores), softmax     4 x 4 dots of 8 FMA + 48 SHFL, 20 exp2,
                                  over shared memory, 16 x 32 FMA        128 FMA (values), 80 SHFL (warp merge)
    estimated chain               ~6 us                                  ~2 us

The step profile's 11.4 us a call (H200) also holds the launch and the gap before the next
kernel, which neither path changes. At decode sizes the time is the chain, not the bytes (1.3 MB
a call at length 640: 0.3 us at 4 TB/s). Every load is
issued unconditionally and masked afterwards (a load under a branch waits for the one before
it). Under programmatic dependent launch (the engine's fused step) the kernel before may still
be appending the newest position (length - 1), so everything it writes (q, that row) is read
after ``griddepcontrol.wait`` through L2 (``ld.global.cg``: never a line cached in L1 before
the wait); launched plainly, the wait returns at once. The number of ranges depends only on
the shapes, never on ``cache_len``, so one CUDA graph serves every decode step; a range past a
sequence's length contributes nothing. ``prefetch_next`` (an engine's hint) names bytes the
next kernel reads, prefetched into L2 as this one drains.
"""
# TASK: kernels/tasks/decode/attention_decode_gqa_bf16.py

import torch
import torch.nn as nn
from autotuner.runtime import allow_nonportable_clusters, compile_module, pdl_launch

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
#ifndef CLUSTER
#define CLUSTER 8
#endif
#ifndef GQA_KERNELS  // which kernels get bodies: 1 the split ones, 2 the cluster ones, 3 both (the host
#define GQA_KERNELS 3  // compiles one module of each, so a module is shared by the settings it does not read)
#endif
#ifndef SPLIT_GG   // the split kernel of this padded group alone gets a body (0: every group's), and
#define SPLIT_GG 0 // SPLIT_VPATH its row loads: VEC wide only, 1 (any alignment) only, 0 both, picked per
#endif             // call by vec. The host builds one (group, path) a module, at its first use: the
#ifndef SPLIT_VPATH  // eight bodies of every group and path took NVRTC 21 s (13.0, the dev CPU) in each
#define SPLIT_VPATH 0  // model's constructor, whether a call ever took the split path or not.
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
// The same from L2 (ld.global.cg): what the kernel before wrote (q, the newest cache row) is read
// after griddepcontrol.wait this way, never from a line the read-only path cached before it.
template <int W> __device__ __forceinline__ Raw<W> ld_raw_l2(const unsigned short* __restrict__ p) {
    Raw<W> r;
    if constexpr (W == 1) r.w = __ldcg(p);
    else if constexpr (W == 2) r.w = __ldcg(reinterpret_cast<const unsigned int*>(p));
    else if constexpr (W == 4) r.w = __ldcg(reinterpret_cast<const uint2*>(p));
    else r.w = __ldcg(reinterpret_cast<const uint4*>(p));
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
        qv[j] = bf_lo(__ldcg(qb + (i < G * D ? i : 0)));
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
                    kr[j][i] = ld_raw_l2<W>(kb + newest * D + (i * W < D ? i * W : 0));
            }
        if (vlane) {
            #pragma unroll
            for (int u = 0; u < VR; ++u)
                if (pl + u * PL == newest) vr[u] = ld_raw_l2<W>(vb + newest * D + (tid % DCE) * W);
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
    if constexpr (SPLIT_GG == 0 || SPLIT_GG == GG) {
        __shared__ GqaShared<GG> sh;
        if (SPLIT_VPATH == VEC || (SPLIT_VPATH == 0 && vec))
            gqa_body<GG, VEC>(sh, q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, pf0, pf0_bytes, pf1,
                              pf1_bytes);
        else
            gqa_body<GG, 1>(sh, q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, pf0, pf0_bytes, pf1,
                            pf1_bytes);
    }
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
#if GQA_KERNELS & 1
    gqa_entry<1>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
#endif
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g2(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 1
    gqa_entry<2>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
#endif
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g4(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 1
    gqa_entry<4>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
#endif
}

extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_decode_g8(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
              const unsigned short* __restrict__ v, const long long* __restrict__ lens,
              unsigned short* __restrict__ out, float* __restrict__ part, int* __restrict__ counters, float scale,
              int kv_heads, int G, long long L, int D, int vec, const unsigned short* __restrict__ pf0,
              long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 1
    gqa_entry<8>(q, k, v, lens, out, part, counters, scale, kv_heads, G, L, D, vec, pf0, pf0_bytes, pf1,
                 pf1_bytes);
#endif
}
// ==== CLUSTER >= 1: one block per (batch, KV head, range), the ranges merged in the cluster =====
// CLUSTER blocks (a thread-block cluster on sm_90; 1: one block per KV head, anywhere) split the
// cache of one (batch, KV head) into CLUSTER equal ranges. Thread layout: TPP lanes per cache
// position (TPP = D / 8 rounded up to a power of two: 8 for head_dim 64), one 16-byte piece of
// the K row and of the V row each; a pass covers BLOCK / TPP positions, a chunk KP passes, all
// held in registers. The G query heads of the KV head share every K/V piece; q is this
// thread's piece of each head, in registers, pre-scaled by softmax scale * log2(e) (exp2).
// Per chunk: dot pieces (FMA) -> xor shuffles over the TPP lanes -> running (max, sum, values)
// per thread, in registers. Then the warp's position lanes (shuffles), the block's warps (one
// __syncthreads, shared memory), the cluster's blocks (distributed shared memory: each block
// merges a slice of the outputs from every rank's state, one DSMEM round trip).
#ifndef QSPLIT   // the cluster kernel: blocks per (batch, KV head, range), each with group / QSPLIT query heads
#define QSPLIT 1   // (the host divides the group evenly; the K and V rows are read once per slice)
#endif
#ifndef PFEARLY  // 1: the cluster kernel issues the next kernel's prefetch hints before griddepcontrol.wait
#define PFEARLY 0   // (DRAM is idle through attention's dependent chain), 0: as it drains
#endif
#ifndef KP
#define KP 4
#endif
#define GQA_CL (CLUSTER > 0 ? CLUSTER : 1)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && CLUSTER > 1
#define RULES_CLUSTER_ATTR __cluster_dims__(CLUSTER, 1, 1)
#define GQA_CLUSTER_HW 1
#else
#define RULES_CLUSTER_ATTR
#define GQA_CLUSTER_HW 0
#endif
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)  // the CPU emulator: each block's own buffer
#define GQA_DYN_SMEM(name) float* const name = (float*)rules_emu_dyn_smem()
#else
extern __shared__ __align__(16) float gqa_dyn_smem_[];
#define GQA_DYN_SMEM(name) float* const name = gqa_dyn_smem_
#endif

// 16 bytes through the read-only path (cache rows no kernel writes while this one runs) ...
__device__ __forceinline__ uint4 ld16(const unsigned short* p) {
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    rules_emu_check_align(p, 16);
#endif
    return __ldg(reinterpret_cast<const uint4*>(p));
}
// ... and from L2 (what the kernel before wrote: q, the newest row; never a stale L1 line)
__device__ __forceinline__ uint4 ld16_l2(const unsigned short* p) {
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    rules_emu_check_align(p, 16);
#endif
    return __ldcg(reinterpret_cast<const uint4*>(p));
}
__device__ __forceinline__ void unpack8(const uint4 w, float* f) {
    f[0] = bf_lo(w.x); f[1] = bf_hi(w.x); f[2] = bf_lo(w.y); f[3] = bf_hi(w.y);
    f[4] = bf_lo(w.z); f[5] = bf_hi(w.z); f[6] = bf_lo(w.w); f[7] = bf_hi(w.w);
}
__device__ __forceinline__ float gqa_exp2(float x) {  // exp2(-inf) = 0
#if defined(__CUDA_ARCH__)
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
#else
    return exp2f(x);
#endif
}
// Cluster barrier, split: arrive (release: this thread's shared-memory writes visible to the
// cluster), wait (acquire). Every thread of every block of the cluster takes part.
__device__ __forceinline__ void gqa_cluster_arrive() {
#if GQA_CLUSTER_HW
    asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    if (GQA_CL > 1) rules_emu_cluster_arrive();
#endif
}
__device__ __forceinline__ void gqa_cluster_wait() {
#if GQA_CLUSTER_HW
    asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    if (GQA_CL > 1) rules_emu_cluster_wait(); else __syncthreads();
#else
    __syncthreads();
#endif
}
// The same shared-memory location in the block of cluster rank r (a generic pointer).
__device__ __forceinline__ const float* gqa_map_rank(const float* p, unsigned r) {
#if GQA_CLUSTER_HW
    unsigned long long out;
    asm volatile("mapa.u64 %0, %1, %2;" : "=l"(out) : "l"(p), "r"(r));
    return reinterpret_cast<const float*>(out);
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    return GQA_CL > 1 ? reinterpret_cast<const float*>(rules_emu_map_rank(p, r)) : p;
#else
    (void)r;
    return p;
#endif
}

// ==== The output projection and residual add fused behind the attention (GQA_KERNELS & 4) =====
// new residual [b, N] = residual + (y W^T) * mult, y = the attention output [b, H * D] in bf16, W
// [N, H * D]. A (batch, KV head)'s y is C = G * D consecutive columns of y, so the blocks of its
// cluster own its partial sums over those columns: block `rank` of OCL takes rows [rank * R,
// rank * R + R) of W (R = N / OCL rounded up), each W row's C-column slice. Slices are loaded into
// shared memory with cp.async before griddepcontrol.wait (weights: no kernel writes them), up to
// `pre` rows (what fits), each padded by 16 bytes (a thread per row reads them conflict-free);
// rows past `pre` are read from global memory after. A thread per row: its dot product with y
// (fp32, from shared memory, the same address for the whole warp), four accumulators. Partial
// sums (fp32) go to part [b][kv_heads][N]; the last of the kv_heads blocks of a (batch, rank) to
// arrive (a fence, then an atomic counter) adds them in KV-head order (deterministic), rounds as
// o_residual does and adds the residual, then resets its counter (graph replays see zeros).
// (Measured on an H200: a warp per row with a shuffle sum, 32 rows a warp, issued ~4,800
// instructions a warp and took 13 of the kernel's 23 us; a thread per row is ~600.)
struct OArgs {
    const unsigned short* w;    // [N, ldw] the output projection
    const unsigned short* res;  // [b, N] the residual stream in
    unsigned short* out;        // [b, N] the residual stream out
    float* part;                // [b, kv_heads, N] fp32 partial sums
    int* counters;              // [b, OCL] arrival counters, zero between calls
    long long N, ldw;
    int pre;                    // W rows a block holds in shared memory
    float mult;
};
__device__ __forceinline__ float gqa_bf(unsigned short h) { return __uint_as_float(((unsigned int)h) << 16); }
__device__ __forceinline__ float gqa_rb(float v) { return gqa_bf(to_bf(v)); }  // a bf16 rounding point
__device__ __forceinline__ void cp_async16(void* smem, const void* g) {
#if defined(__CUDA_ARCH__)
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(s), "l"(g) : "memory");
#else
#if defined(RULES_EMULATE)
    rules_emu_check_align(smem, 16);
    rules_emu_check_align(g, 16);
#endif
    *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(g);
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
__device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}
// Floats of the attention's shared memory (the warps' states, the block's), rounded up to 16 bytes;
// the host computes the same (ModelNew._smem).
__device__ __forceinline__ int gqa_attn_floats(int nwarp, int gg, int D) {
    const int n = nwarp * gg * D + 2 * nwarp * gg + gg * D + 2 * gg;
    return (n + 3) & ~3;
}
// This block's rows [n0, n0 + rows) of W: the first `pre` rows' C-column slices into wt (row stride
// C + 8 elements), by cp.async; thread t copies pieces t, t + BLOCK, ... of the flattened slices.
__device__ __forceinline__ void oproj_preload(const OArgs& o, unsigned short* wt, long long n0, long long rows,
                                              long long col0, int C) {
    const int pieces = C >> 3;
    const int held = (int)(rows < o.pre ? rows : o.pre);
    const int dr = BLOCK / pieces, dp = BLOCK - dr * pieces;  // BLOCK pieces on: dr rows and dp pieces
    int r = threadIdx.x / pieces, p = threadIdx.x - r * pieces;
    while (r < held) {
        cp_async16(wt + r * (C + 8) + p * 8, o.w + (n0 + r) * o.ldw + col0 + p * 8);
        r += dr;
        p += dp;
        if (p >= pieces) { p -= pieces; ++r; }
    }
    cp_async_commit();
}
// One piece (8 bf16 of a W row) against y's 8 floats at yf.
__device__ __forceinline__ float oproj_piece(const uint4 w, const float* yf, float a) {
    float wf[8];
    unpack8(w, wf);
    const float4 y0 = reinterpret_cast<const float4*>(yf)[0];
    const float4 y1 = reinterpret_cast<const float4*>(yf)[1];
    a = fmaf(wf[0], y0.x, a); a = fmaf(wf[1], y0.y, a); a = fmaf(wf[2], y0.z, a); a = fmaf(wf[3], y0.w, a);
    a = fmaf(wf[4], y1.x, a); a = fmaf(wf[5], y1.y, a); a = fmaf(wf[6], y1.z, a); a = fmaf(wf[7], y1.w, a);
    return a;
}
// A row's slice in shared memory against y: four accumulators (four independent FMA chains).
__device__ __forceinline__ float oproj_dot_smem(const unsigned short* w, const float* yf, int pieces) {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int p = 0;
    for (; p + 4 <= pieces; p += 4) {
        a0 = oproj_piece(*reinterpret_cast<const uint4*>(w + p * 8), yf + p * 8, a0);
        a1 = oproj_piece(*reinterpret_cast<const uint4*>(w + p * 8 + 8), yf + p * 8 + 8, a1);
        a2 = oproj_piece(*reinterpret_cast<const uint4*>(w + p * 8 + 16), yf + p * 8 + 16, a2);
        a3 = oproj_piece(*reinterpret_cast<const uint4*>(w + p * 8 + 24), yf + p * 8 + 24, a3);
    }
    for (; p < pieces; ++p) a0 = oproj_piece(*reinterpret_cast<const uint4*>(w + p * 8), yf + p * 8, a0);
    return (a0 + a1) + (a2 + a3);
}
__device__ __forceinline__ float oproj_dot_global(const unsigned short* w, const float* yf, int pieces) {
    float acc = 0.0f;
    for (int p0 = 0; p0 < pieces; p0 += 8) {   // eight 16-byte loads in flight
        uint4 raw[8];
        #pragma unroll
        for (int u = 0; u < 8; ++u)
            raw[u] = p0 + u < pieces ? ld16(w + (p0 + u) * 8) : make_uint4(0u, 0u, 0u, 0u);
        #pragma unroll
        for (int u = 0; u < 8; ++u)
            if (p0 + u < pieces) acc = oproj_piece(raw[u], yf + (p0 + u) * 8, acc);
    }
    return acc;
}
// After oproj_preload (waited for) and with y (C floats, bf16 values) in yf: the partial sums, the
// arrival, and (the last block of the rank) the sum, rounding and residual add.
__device__ __forceinline__ void oproj_tail(const OArgs& o, const float* yf, const unsigned short* wt, long long b,
                                           long long kvh, int kv_heads, long long n0, long long rows,
                                           long long slot, int C, int* flag) {
    const int tid = threadIdx.x, pieces = C >> 3;
    for (long long j = tid; j < rows; j += BLOCK) {
        const float acc = j < o.pre ? oproj_dot_smem(wt + j * (C + 8), yf, pieces)
                                    : oproj_dot_global(o.w + (n0 + j) * o.ldw + kvh * C, yf, pieces);
        o.part[(b * kv_heads + kvh) * o.N + n0 + j] = acc;
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) *flag = rows > 0 && atomicAdd(o.counters + slot, 1) == kv_heads - 1;
    __syncthreads();
    if (*flag) {
        __threadfence();
        for (long long j = tid; j < rows; j += BLOCK) {
            const long long n = n0 + j;
            float s = 0.0f;
            #pragma unroll 8
            for (int h = 0; h < kv_heads; ++h) s += __ldcg(o.part + (b * kv_heads + h) * o.N + n);
            float t = gqa_rb(s);
            if (o.mult != 1.0f) t = gqa_rb(t * o.mult);
            o.out[b * o.N + n] = to_bf(gqa_bf(o.res[b * o.N + n]) + t);
        }
        if (tid == 0) o.counters[slot] = 0;  // ready for the next call
    }
}

// One chunk (KP passes) of this thread's positions into its running state (m, l, acc) per head.
// Positions at or past e1 (past the sequence's length or the block's range) are masked: their
// score is -inf and their V piece is never used (it may be unwritten: not even 0 * NaN).
template <int GG>
__device__ __forceinline__ void gqa_chunk(const float (&qf)[GG][8], const uint4 (&kr)[KP], const uint4 (&vr)[KP],
                                          long long cb, long long e1, int pp, int pg, int tpp, float (&m)[GG],
                                          float (&l)[GG], float (&acc)[GG][8])
{
    float s[KP][GG];
    #pragma unroll
    for (int j = 0; j < KP; ++j) {
        float kf[8];
        unpack8(kr[j], kf);
        #pragma unroll
        for (int g = 0; g < GG; ++g) {
            float d = 0.0f;
            #pragma unroll
            for (int e = 0; e < 8; ++e) d = fmaf(qf[g][e], kf[e], d);
            s[j][g] = d;
        }
    }
    #pragma unroll
    for (int o = 1; o < 32; o <<= 1) {  // the whole dot: the TPP lanes of a position (aligned groups)
        if (o < tpp) {
            #pragma unroll
            for (int j = 0; j < KP; ++j)
                #pragma unroll
                for (int g = 0; g < GG; ++g) s[j][g] += __shfl_xor_sync(0xffffffffu, s[j][g], o);
        }
    }
    bool valid[KP];
    #pragma unroll
    for (int j = 0; j < KP; ++j) valid[j] = cb + (long long)(j * pp + pg) < e1;
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        float cm = NEG_INF;
        #pragma unroll
        for (int j = 0; j < KP; ++j) {
            s[j][g] = valid[j] ? s[j][g] : NEG_INF;
            cm = fmaxf(cm, s[j][g]);
        }
        const float mn = fmaxf(m[g], cm);
        const float ms = mn == NEG_INF ? 0.0f : mn;    // nothing attended yet: every weight is 0
        const float alpha = gqa_exp2(m[g] - ms);
        m[g] = mn;
        l[g] *= alpha;
        #pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] *= alpha;
        #pragma unroll
        for (int j = 0; j < KP; ++j) {
            s[j][g] = gqa_exp2(s[j][g] - ms);
            l[g] += s[j][g];
        }
    }
    #pragma unroll
    for (int j = 0; j < KP; ++j) {
        if (valid[j]) {
            float vf[8];
            unpack8(vr[j], vf);
            #pragma unroll
            for (int g = 0; g < GG; ++g)
                #pragma unroll
                for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(s[j][g], vf[e], acc[g][e]);
        }
    }
}

// GG: the group size rounded up to one of CLUSTER_GROUPS (1, 2, 4, 6, 8; heads past G compute on head
// 0's q, unused).
// Requires D % 8 == 0, D <= 128 and 16-byte aligned q, k, v (the host falls back otherwise).
// Shared memory (floats): the warps' states acc [NWARP][GG][D], m [NWARP][GG], l [NWARP][GG];
// then the block's state acc [GG][D], m [GG], l [GG] (what the cluster reads). OPROJ: the output
// projection and residual add behind it (oproj_tail; `out` unused): then ys [C] (this block's
// merged outputs), yf [C] (the cluster's, gathered), the arrival flag, and W's rows (bf16).
template <int GG, bool OPROJ>
__device__ __forceinline__ void gqa_cluster_body(const unsigned short* __restrict__ q,
                                                 const unsigned short* __restrict__ k,
                                                 const unsigned short* __restrict__ v,
                                                 const long long* __restrict__ lens, unsigned short* __restrict__ out,
                                                 float qscale, int kv_heads, int Gall, long long L, int D,
                                                 const unsigned short* __restrict__ pf0, long long pf0_bytes,
                                                 const unsigned short* __restrict__ pf1, long long pf1_bytes,
                                                 const OArgs& oa)
{
    constexpr int NWARP = BLOCK / 32;
    GQA_DYN_SMEM(sm);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned rank = GQA_CL > 1 ? (unsigned)(blockIdx.x % GQA_CL) : 0u;
    constexpr int QS = OPROJ ? 1 : QSPLIT;
    const long long blk = blockIdx.x / GQA_CL;           // (batch * kv_heads + kv head) * QS + query-head slice
    const long long bkv = blk / QS;                      // batch * kv_heads + kv head
    const int G = Gall / QS;                             // this block's query heads
    const long long hb = bkv * Gall + (blk % QS) * G;    // the first of them
    const int DC = D >> 3;                                 // 16-byte pieces of a row
    int tpp = 1;
    while (tpp < DC) tpp <<= 1;                            // lanes per position
    const int pp = BLOCK / tpp, pg = tid / tpp, c = tid & (tpp - 1);
    const int cc = c < DC ? c : 0;                         // lanes past the row read piece 0 (q is 0 there)
    const long long span = (L + GQA_CL - 1) / GQA_CL;
    const long long r0 = (long long)rank * span;
    const long long r1 = r0 + span < L ? r0 + span : L;    // this block's positions [r0, r1), maybe none
    const unsigned short* __restrict__ kb = k + bkv * L * D + cc * 8;
    const unsigned short* __restrict__ vb = v + bkv * L * D + cc * 8;
    // One round trip: the length (no kernel writes it) and the first chunk's K and V pieces,
    // all issued before anything waits (rows are not skipped by length here, so no load waits
    // for the length; the range's rows past it are masked), and before griddepcontrol.wait.
    const long long len0 = __ldg(lens + bkv / kv_heads);
    uint4 kr[KP], vr[KP];
    #pragma unroll
    for (int j = 0; j < KP; ++j) {
        const long long t = r0 + j * pp + pg;
        const long long row = t < r1 ? t : 0;
        kr[j] = ld16(kb + row * D);
        vr[j] = ld16(vb + row * D);
    }
    // OPROJ: this block's slices of W into shared memory, also before the wait
    const int C = G * D;
    const int afl = gqa_attn_floats(NWARP, GG, D);
    float* const ys = sm + afl;
    float* const yf = ys + C;
    int* const oflag = reinterpret_cast<int*>(yf + C);
    unsigned short* const wt = reinterpret_cast<unsigned short*>(yf + C + 4);
    const long long orows_per = OPROJ ? (oa.N + GQA_CL - 1) / GQA_CL : 0;
    const long long on0 = (long long)rank * orows_per;
    const long long orows = OPROJ ? (on0 + orows_per < oa.N ? orows_per : (oa.N > on0 ? oa.N - on0 : 0)) : 0;
    const long long kvh = bkv % kv_heads;
    if (OPROJ) oproj_preload(oa, wt, on0, orows, kvh * C, C);
    if (PFEARLY) {  // the next kernel's bytes: hints (no kernel writes weights), DRAM busy meanwhile
        const long long tw = (long long)gridDim.x * NWARP, gw = (long long)blockIdx.x * NWARP + warp;
        prefetch_share(pf0, pf0_bytes, gw, tw, lane);
        prefetch_share(pf1, pf1_bytes, gw, tw, lane);
    }
    pdl_wait();                  // q and the newest cache row are the kernel before's output
    pdl_launch_dependents();
    const long long len = len0 < L ? len0 : L;
    const long long e1 = r1 < len ? r1 : len;              // attended: [r0, e1)
    float qf[GG][8];
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        const int gi = g < G ? g : 0;
        unpack8(ld16_l2(q + (hb + gi) * D + cc * 8), qf[g]);
        #pragma unroll
        for (int e = 0; e < 8; ++e) qf[g][e] = c < DC ? qf[g][e] * qscale : 0.0f;
    }
    // The newest position (len - 1) may have been appended by the kernel before after the loads
    // above were issued: read again (from L2), now that it is complete.
    const long long newest = len - 1;
    #pragma unroll
    for (int j = 0; j < KP; ++j) {
        if (r0 + j * pp + pg == newest) {
            kr[j] = ld16_l2(kb + newest * D);
            vr[j] = ld16_l2(vb + newest * D);
        }
    }
    float m[GG], l[GG], acc[GG][8];
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        m[g] = NEG_INF;
        l[g] = 0.0f;
        #pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;
    }
    gqa_chunk<GG>(qf, kr, vr, r0, e1, pp, pg, tpp, m, l, acc);
    // Ranges longer than a chunk (long caches): further chunks, rows past the length not read.
    const long long CH = (long long)KP * pp;
    for (long long cb = r0 + CH; cb < e1; cb += CH) {
        #pragma unroll
        for (int j = 0; j < KP; ++j) {
            const long long t = cb + j * pp + pg;
            const long long row = t < e1 ? t : r0;
            kr[j] = ld16_l2(kb + row * D);
            vr[j] = ld16_l2(vb + row * D);
        }
        gqa_chunk<GG>(qf, kr, vr, cb, e1, pp, pg, tpp, m, l, acc);
    }
    // The warp's position lanes (xor tpp .. 16): the max first, then the rescaled sums.
    #pragma unroll
    for (int g = 0; g < GG; ++g) {
        float M = m[g];
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1)
            if (o >= tpp) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
        const float f = gqa_exp2(m[g] - (M == NEG_INF ? 0.0f : M));
        m[g] = M;
        l[g] *= f;
        #pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] *= f;
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            if (o >= tpp) {
                l[g] += __shfl_xor_sync(0xffffffffu, l[g], o);
                #pragma unroll
                for (int e = 0; e < 8; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
            }
        }
    }
    float* const ws_acc = sm;                          // [NWARP][GG][D]
    float* const ws_m = ws_acc + NWARP * GG * D;       // [NWARP][GG]
    float* const ws_l = ws_m + NWARP * GG;             // [NWARP][GG]
    float* const bs = ws_l + NWARP * GG;               // acc [GG][D], then m [GG], l [GG]
    if (lane < tpp && c < DC) {
        #pragma unroll
        for (int g = 0; g < GG; ++g) {
            float4* w = reinterpret_cast<float4*>(ws_acc + (warp * GG + g) * D + c * 8);
            w[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
            w[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
        }
    }
    if (lane == 0) {
        #pragma unroll
        for (int g = 0; g < GG; ++g) { ws_m[warp * GG + g] = m[g]; ws_l[warp * GG + g] = l[g]; }
    }
    __syncthreads();
    // The block's warps: thread per (head, element).
    for (int i = tid; i < G * D; i += BLOCK) {
        const int g = i / D, d = i - g * D;
        float M = NEG_INF;
        #pragma unroll
        for (int w = 0; w < NWARP; ++w) M = fmaxf(M, ws_m[w * GG + g]);
        const float Ms = M == NEG_INF ? 0.0f : M;
        float S = 0.0f, A = 0.0f;
        #pragma unroll
        for (int w = 0; w < NWARP; ++w) {
            const float f = gqa_exp2(ws_m[w * GG + g] - Ms);
            S = fmaf(f, ws_l[w * GG + g], S);
            A = fmaf(f, ws_acc[(w * GG + g) * D + d], A);
        }
        bs[g * D + d] = A;
        if (d == 0) { bs[GG * D + g] = M; bs[GG * D + GG + g] = S; }
    }
    gqa_cluster_arrive();
    gqa_cluster_wait();
    // The cluster's ranges: block `rank` writes outputs [lo, hi) of the G * D; GQA_CL lanes per
    // output, lane `src` reading rank src's block state (all three loads in one round trip).
    {
        const int n = G * D, S = (n + GQA_CL - 1) / GQA_CL;
        const int lo = (int)rank * S, hi = lo + S < n ? lo + S : n;
        const int src = tid % GQA_CL, o = tid / GQA_CL;
        constexpr int OPP = BLOCK / GQA_CL;
        const float* rb = gqa_map_rank(bs, (unsigned)src);
        for (int base = lo; base < lo + S; base += OPP) {  // the same trip count in every thread
            const int i = base + o;
            const bool ok = i < hi;
            const int ii = ok ? i : 0;
            const int g = ii / D, d = ii - g * D;
            const float mr = rb[GG * D + g], lr = rb[GG * D + GG + g], ar = rb[g * D + d];
            float M = mr;
            #pragma unroll
            for (int x = 1; x < GQA_CL; x <<= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, x));
            const float f = gqa_exp2(mr - (M == NEG_INF ? 0.0f : M));
            float Ssum = lr * f, A = ar * f;
            #pragma unroll
            for (int x = 1; x < GQA_CL; x <<= 1) {
                Ssum += __shfl_xor_sync(0xffffffffu, Ssum, x);
                A += __shfl_xor_sync(0xffffffffu, A, x);
            }
            if (ok && src == 0) {
                if (OPROJ) ys[ii] = gqa_bf(to_bf(A / Ssum));
                else out[(hb + g) * D + d] = to_bf(A / Ssum);
            }
        }
        if (OPROJ) {  // the cluster's outputs into every block: ranks' slices through DSMEM
            gqa_cluster_arrive();
            gqa_cluster_wait();
            for (int i = tid; i < n; i += BLOCK) yf[i] = gqa_map_rank(ys, (unsigned)(i / S))[i];
            if (GQA_CL > 1) gqa_cluster_arrive();  // done reading the others (waited for at the end)
            cp_async_wait_all();
            __syncthreads();
            oproj_tail(oa, yf, wt, bkv / kv_heads, kvh, kv_heads, on0, orows, (bkv / kv_heads) * GQA_CL + rank, C,
                       oflag);
        }
    }
    if (!PFEARLY) {   // the next kernel's bytes into L2 while this one drains (hints; 0 bytes: none)
        const long long tw = (long long)gridDim.x * NWARP;
        const long long gw = (long long)blockIdx.x * NWARP + warp;
        prefetch_share(pf0, pf0_bytes, gw, tw, lane);
        prefetch_share(pf1, pf1_bytes, gw, tw, lane);
    }
    if (GQA_CL > 1) {  // no block leaves while another may still read its state
        if (!OPROJ) gqa_cluster_arrive();
        gqa_cluster_wait();
    }
}

// One kernel per group size, as above. RULES_CLUSTER_ATTR: __cluster_dims__(CLUSTER, 1, 1) on
// sm_90 (compile-time: a plain launch works); the CPU emulator reads the cluster size from it.
extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_g1(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
               const unsigned short* __restrict__ v, const long long* __restrict__ lens,
               unsigned short* __restrict__ out, float qscale, int kv_heads, int G, long long L, int D,
               const unsigned short* __restrict__ pf0, long long pf0_bytes, const unsigned short* __restrict__ pf1,
               long long pf1_bytes)
{
#if GQA_KERNELS & 2
    gqa_cluster_body<1, false>(q, k, v, lens, out, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               OArgs{});
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_g2(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
               const unsigned short* __restrict__ v, const long long* __restrict__ lens,
               unsigned short* __restrict__ out, float qscale, int kv_heads, int G, long long L, int D,
               const unsigned short* __restrict__ pf0, long long pf0_bytes, const unsigned short* __restrict__ pf1,
               long long pf1_bytes)
{
#if GQA_KERNELS & 2
    gqa_cluster_body<2, false>(q, k, v, lens, out, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               OArgs{});
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_g4(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
               const unsigned short* __restrict__ v, const long long* __restrict__ lens,
               unsigned short* __restrict__ out, float qscale, int kv_heads, int G, long long L, int D,
               const unsigned short* __restrict__ pf0, long long pf0_bytes, const unsigned short* __restrict__ pf1,
               long long pf1_bytes)
{
#if GQA_KERNELS & 2
    gqa_cluster_body<4, false>(q, k, v, lens, out, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               OArgs{});
#endif
}

// Six heads a KV head (Qwen2.5-1.5B: 12 over 2) exactly: padded to eight, a quarter of every
// thread's dot products, shuffles and accumulators went to heads that do not exist.
extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_g6(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
               const unsigned short* __restrict__ v, const long long* __restrict__ lens,
               unsigned short* __restrict__ out, float qscale, int kv_heads, int G, long long L, int D,
               const unsigned short* __restrict__ pf0, long long pf0_bytes, const unsigned short* __restrict__ pf1,
               long long pf1_bytes)
{
#if GQA_KERNELS & 2
    gqa_cluster_body<6, false>(q, k, v, lens, out, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               OArgs{});
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_g8(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
               const unsigned short* __restrict__ v, const long long* __restrict__ lens,
               unsigned short* __restrict__ out, float qscale, int kv_heads, int G, long long L, int D,
               const unsigned short* __restrict__ pf0, long long pf0_bytes, const unsigned short* __restrict__ pf1,
               long long pf1_bytes)
{
#if GQA_KERNELS & 2
    gqa_cluster_body<8, false>(q, k, v, lens, out, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               OArgs{});
#endif
}
// ---- GQA_KERNELS & 4: attention + output projection + residual add ----------------------------
__device__ __forceinline__ OArgs gqa_oargs(const unsigned short* w, const unsigned short* res, unsigned short* out,
                                           float* part, int* counters, long long N, long long ldw, int pre,
                                           float mult) {
    OArgs o;
    o.w = w; o.res = res; o.out = out; o.part = part; o.counters = counters; o.N = N; o.ldw = ldw; o.pre = pre;
    o.mult = mult;
    return o;
}
// One kernel per group size, as above: the attention, then oproj_tail (shared memory: the
// attention's, ys, yf, the flag, W's rows; the host's ModelNew._smem).
extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_o_g1(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                 const unsigned short* __restrict__ v, const long long* __restrict__ lens, float qscale, int kv_heads,
                 int G, long long L, int D, const unsigned short* __restrict__ w,
                 const unsigned short* __restrict__ res, unsigned short* __restrict__ out, float* __restrict__ part,
                 int* __restrict__ counters, long long N, int pre, float mult, const unsigned short* __restrict__ pf0,
                 long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 4
    gqa_cluster_body<1, true>(q, k, v, lens, 0, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               gqa_oargs(w, res, out, part, counters, N, (long long)kv_heads * G * D, pre, mult));
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_o_g2(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                 const unsigned short* __restrict__ v, const long long* __restrict__ lens, float qscale, int kv_heads,
                 int G, long long L, int D, const unsigned short* __restrict__ w,
                 const unsigned short* __restrict__ res, unsigned short* __restrict__ out, float* __restrict__ part,
                 int* __restrict__ counters, long long N, int pre, float mult, const unsigned short* __restrict__ pf0,
                 long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 4
    gqa_cluster_body<2, true>(q, k, v, lens, 0, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               gqa_oargs(w, res, out, part, counters, N, (long long)kv_heads * G * D, pre, mult));
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_o_g4(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                 const unsigned short* __restrict__ v, const long long* __restrict__ lens, float qscale, int kv_heads,
                 int G, long long L, int D, const unsigned short* __restrict__ w,
                 const unsigned short* __restrict__ res, unsigned short* __restrict__ out, float* __restrict__ part,
                 int* __restrict__ counters, long long N, int pre, float mult, const unsigned short* __restrict__ pf0,
                 long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 4
    gqa_cluster_body<4, true>(q, k, v, lens, 0, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               gqa_oargs(w, res, out, part, counters, N, (long long)kv_heads * G * D, pre, mult));
#endif
}

extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, 1)
gqa_cluster_o_g8(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                 const unsigned short* __restrict__ v, const long long* __restrict__ lens, float qscale, int kv_heads,
                 int G, long long L, int D, const unsigned short* __restrict__ w,
                 const unsigned short* __restrict__ res, unsigned short* __restrict__ out, float* __restrict__ part,
                 int* __restrict__ counters, long long N, int pre, float mult, const unsigned short* __restrict__ pf0,
                 long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
#if GQA_KERNELS & 4
    gqa_cluster_body<8, true>(q, k, v, lens, 0, qscale, kv_heads, G, L, D, pf0, pf0_bytes, pf1, pf1_bytes,
                               gqa_oargs(w, res, out, part, counters, N, (long long)kv_heads * G * D, pre, mult));
#endif
}

// The projection alone, after the split kernel (long caches): block (batch, KV head, rank of
// ocl) reads that (batch, KV head)'s C outputs of y [b, H * D] (the kernel before's) and runs the
// same tail. Shared memory: yf [C], the flag, W's rows.
extern "C" __global__ void __launch_bounds__(BLOCK)
gqa_oproj(const unsigned short* __restrict__ y, int kv_heads, int C, int ocl, const unsigned short* __restrict__ w,
          const unsigned short* __restrict__ res, unsigned short* __restrict__ out, float* __restrict__ part,
          int* __restrict__ counters, long long N, int pre, float mult)
{
#if GQA_KERNELS & 4
    GQA_DYN_SMEM(sm);
    float* const yf = sm;
    int* const oflag = reinterpret_cast<int*>(yf + C);
    unsigned short* const wt = reinterpret_cast<unsigned short*>(yf + C + 4);
    const long long rank = blockIdx.x % ocl, bkv = blockIdx.x / ocl;
    const long long b = bkv / kv_heads, kvh = bkv % kv_heads;
    const OArgs o = gqa_oargs(w, res, out, part, counters, N, (long long)kv_heads * C, pre, mult);
    const long long per = (N + ocl - 1) / ocl, n0 = rank * per;
    const long long rows = n0 + per < N ? per : (N > n0 ? N - n0 : 0);
    oproj_preload(o, wt, n0, rows, kvh * C, C);
    pdl_wait();
    pdl_launch_dependents();
    for (int i = threadIdx.x; i < C; i += BLOCK) yf[i] = gqa_bf(__ldcg(y + bkv * C + i));
    cp_async_wait_all();
    __syncthreads();
    oproj_tail(o, yf, wt, b, kvh, kv_heads, n0, rows, b * ocl + rank, C, oflag);
#endif
}
'''
PARAMS = {"BLOCK": [64, 128, 256], "VEC": [2, 4, 8], "CLUSTER": [0, 1, 2, 4, 8, 16, -1], "KP": [0, 2, 4, 8],
          "CHUNKS": [1, 2, 4, 16], "QSPLIT": [0, 1, 2, 4]}
SWEEP_KNOBS = {"PFEARLY": [0, 1]}
# PFEARLY (the next kernel's L2 prefetch hints issued before the PDL wait, where DRAM is idle
# through attention's dependent chain) is a constructor knob for the step sweep, not searched:
# it acts only on an engine's hints, and those lose on the whole step (H200, 2026-12-03, the
# attention kernel naming the gate/up rows: Llama-3.2-1B 0.862 ms without hints, 0.913 with them
# at the end, 0.888 before the wait; every slot's hints 1.055).
LOG2E = 1.4426950408889634
CLUSTER_GROUPS = (1, 2, 4, 6, 8)  # the cluster kernels' query heads per KV head (a group is padded up to one)


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
    # Every kernel here executes griddepcontrol.wait before launch_dependents: when a PDL successor
    # starts, every kernel before this one has completed (an engine may let it read their outputs
    # before its own wait, the decode seeds' EARLY).
    waits_before_trigger = True

    def __init__(self, BLOCK: int = 256, VEC: int = 8, CLUSTER: int = 8, KP: int = 0, CHUNKS: int = 2,
                 PFEARLY: int = 0, QSPLIT: int = 0):
        # CLUSTER 0: the split kernel with the last-block merge (BLOCK positions a range; 128 was
        # measured best for it); 1, 2, 4, 8, 16: the one-kernel cluster path (BLOCK threads, KP passes
        # of BLOCK / (head_dim / 8) positions in registers: a chunk), which serves 16-byte aligned
        # heads whose head_dim is a multiple of 8 and caches a block covers in at most CHUNKS
        # chunks (each a round trip of its own: 2048 positions for head_dim 64 at the defaults);
        # other calls take the split kernel, whose many blocks keep more bytes in flight. 16 is a
        # non-portable cluster size (sm_90: the driver must allow it; refused, the call fails);
        # -1: 16 where clusters of 8 would fill at most a quarter of the SMs (few KV heads, as
        # Qwen2.5-1.5B's two at batch 1: 16 of 132 SMs) and the GPU allows it, else 8. Measured
        # for Qwen on an H200 (2026-12-02): 16 is slower (10.6 against 9.7 us a call alone; the
        # step alike), so neither is the default: a block's fixed merge work, not its share of the
        # cache, sets the time there.
        super().__init__()
        KEYS = 1  # positions per thread in the scores phase (their K rows are held in registers)
        self.block, self.chunk, self.vec, self.cluster = BLOCK, BLOCK * KEYS, VEC, CLUSTER
        self.kp, self.max_chunks, self.pf_early = KP, CHUNKS, PFEARLY  # PFEARLY: the cluster kernel's hints before its wait
        # QSPLIT: the cluster kernel's query-head slices per KV head (at most; a divisor of the
        # group), 0 as many as keep every cluster resident; KP 0: 2 where heads are sliced and
        # head_dim <= 64, else 4. Chosen on the whole decode step (H200, 2026-12-03, interleaved
        # A/B, ms a step): Llama-3.2-1B 0.867 -> 0.857 with 2 slices, 0.849 with KP 2 too (4 or 6
        # slices: 256 blocks, two waves, 0.882); Qwen2.5-1.5B (2 KV heads: 16 of 132 SMs) 1.432 ->
        # 1.373 / 1.319 / 1.294 with 2 / 3 / 6 slices; Granite-3.2-2B 1.918 -> 1.921 / 1.920.
        self.qsplit = max(0, QSPLIT)
        self.maxd, self.maxg = 128, 8
        # two module families, each with the bodies of one, built at their first use: a split
        # module per padded group and row-load path (it serves every CLUSTER and KP at this BLOCK
        # and VEC), a cluster module per cluster size
        self.split_modules = {}    # (padded group, row-load path) -> module
        self.cluster_modules = {}  # (cluster size, query-head slices, passes a chunk) -> module
        self.nonportable = {}      # (cluster size, device) -> the driver allowed it (True / False)
        if CLUSTER > 0 and KP > 0:
            self._cluster_module(CLUSTER, 1, KP)
        # Arrival counters of the last-block merge, one per (batch, KV head); the merging
        # block resets its own, so they are zero between calls (and between graph replays).
        self.counters = None
        self.clusters_ok = {}  # device -> thread-block clusters available (sm_90+)
        self.sms = {}          # device -> multiprocessors

    def _cluster_module(self, cluster, qs=1, kp=4):
        """The cluster kernels' module for a cluster size, query-head slices and passes a chunk,
        compiled at its first use."""
        if (cluster, qs, kp) not in self.cluster_modules:
            self.cluster_modules[cluster, qs, kp] = compile_module(SOURCE, defines={
                "BLOCK": self.block, "MAXD": self.maxd, "CLUSTER": cluster, "KP": kp, "GQA_KERNELS": 2,
                "PFEARLY": self.pf_early, "QSPLIT": qs})
        return self.cluster_modules[cluster, qs, kp]

    def _allowed(self, cluster, device, qs=1, kp=4):
        """Whether clusters of this size may launch on ``device``: up to 8 always; 16 (non-portable)
        once the driver took the opt-in for every kernel of the module (not asked off the GPU)."""
        if cluster <= 8 or device.type != "cuda":
            return True
        key = (cluster, qs, kp, device)
        if key not in self.nonportable:
            module = self._cluster_module(cluster, qs, kp)
            self.nonportable[key] = all(allow_nonportable_clusters(module.kernel(f"gqa_cluster_g{g}")) is not False
                                        for g in CLUSTER_GROUPS)
        return self.nonportable[key]

    def _cluster_size(self, batch, kv_heads, device):
        """This call's cluster size: CLUSTER, or under -1 the one chosen from the shapes."""
        if self.cluster >= 0:
            return self.cluster
        if batch * kv_heads * 8 * 4 <= self._sm_count(device) and self._allowed(16, device):
            return 16
        return 8

    def _sm_count(self, device):
        if device not in self.sms:
            self.sms[device] = torch.cuda.get_device_properties(device).multi_processor_count
        return self.sms[device]

    def _slices(self, batch, kv_heads, group, cluster, device):
        """Query-head slices of a KV head's group for the cluster kernel (each slice a cluster of
        its own with group / slices heads, reading the same K and V rows, the second time from
        L2): the largest divisor of the group up to QSPLIT; QSPLIT 0, up to what keeps every
        cluster on the GPU at once (batch x KV heads x slices x cluster <= SMs)."""
        limit = self.qsplit
        if limit <= 0:
            limit = max(1, self._sm_count(device) // max(1, batch * kv_heads * cluster))
        return max(s for s in range(1, min(limit, group) + 1) if group % s == 0)

    def _kp(self, d, qs):
        """Passes a chunk: KP, or under 0 two where heads are sliced and rows are short, else four."""
        return self.kp if self.kp > 0 else (2 if qs > 1 and d <= 64 else 4)

    def _cluster_plan(self, q, k_cache, v_cache, cluster):
        """(query-head slices, passes a chunk) of this call on the cluster kernel of ``cluster``
        blocks, or None where it takes the split kernel."""
        device, d, max_len = q.device, q.shape[-1], k_cache.shape[2]
        if cluster < 1 or d % 8 or any(t.data_ptr() % 16 for t in (q, k_cache, v_cache)):
            return None
        qs = self._slices(q.shape[0], k_cache.shape[1], q.shape[1] // k_cache.shape[1], cluster, device)
        lanes = 1 << (d // 8 - 1).bit_length()          # lanes per position (a power of two)
        span = -(-max_len // cluster)                    # positions of a block
        # KP 0: two passes a chunk where chosen and the range fits in CHUNKS such chunks, else four
        for kp in dict.fromkeys([self._kp(d, qs)] + ([4] if self.kp <= 0 else [])):
            chunk = kp * (self.block // lanes)           # positions a block takes per round trip
            if -(-span // chunk) <= self.max_chunks:
                break
        else:
            return None
        if cluster > 1 and device.type == "cuda":
            if device not in self.clusters_ok:
                self.clusters_ok[device] = torch.cuda.get_device_properties(device).major >= 9
            if not self.clusters_ok[device]:
                return None
        return qs, kp

    def uses_cluster_kernel(self, q, k_cache, v_cache):
        """Whether a call on these tensors takes the cluster kernel (else the split kernel)."""
        cluster = self._cluster_size(q.shape[0], k_cache.shape[1], q.device)
        return self._cluster_plan(q, k_cache, v_cache, cluster) is not None

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
        gg = 1 << (group - 1).bit_length()  # the split kernels' padded group
        cluster = self._cluster_size(b, kv_heads, q.device)
        plan = self._cluster_plan(q, k_cache, v_cache, cluster)
        if plan is not None:
            qs, kp = plan
            gg = min(g for g in CLUSTER_GROUPS if g >= group // qs)
            if not self._allowed(cluster, q.device, qs, kp):
                raise RuntimeError(f"this GPU refused clusters of {cluster} blocks (a non-portable size): "
                                   "use CLUSTER 8 or less, or -1 to choose")
            module = self._cluster_module(cluster, qs, kp)
            nw = self.block // 32
            smem = 4 * (nw * gg * d + 2 * nw * gg + gg * d + 2 * gg)  # the warps' states, the block's
            pdl_launch(module, f"gqa_cluster_g{gg}", grid=(b * kv_heads * qs * cluster,), block=(self.block,),
                       args=(q, k_cache, v_cache, cache_len, out, d ** -0.5 * LOG2E, kv_heads, group, max_len, d)
                       + _hints(self.prefetch_next, q), shared_mem=smem)
            return out
        splits = -(-max_len // self.chunk)  # from the shapes alone: graph-safe
        if self.counters is None or self.counters.numel() < b * kv_heads or self.counters.device != q.device:
            self.counters = torch.zeros(b * kv_heads, dtype=torch.int32, device=q.device)
        vec = int(d % self.vec == 0 and all(t.data_ptr() % (2 * self.vec) == 0 for t in (q, k_cache, v_cache)))
        part = torch.empty(b * h * splits * (d + 2) if splits > 1 else 1, dtype=torch.float32, device=q.device)
        pdl_launch(self._split_module(gg, vec), f"gqa_decode_g{gg}", grid=(b * kv_heads, splits), block=(self.block,),
                   args=(q, k_cache, v_cache, cache_len, out, part, self.counters, d ** -0.5, kv_heads, group,
                         max_len, d, vec) + _hints(self.prefetch_next, q))
        return out

    def _split_module(self, gg, vec):
        """The split kernel of padded group ``gg`` with one row-load path (VEC wide where ``vec``,
        else any alignment), compiled at its first use."""
        key = (gg, self.vec if vec else 1)
        if key not in self.split_modules:
            self.split_modules[key] = compile_module(SOURCE, defines={
                "BLOCK": self.block, "KEYS": 1, "VEC": self.vec, "MAXD": self.maxd, "GQA_KERNELS": 1,
                "SPLIT_GG": gg, "SPLIT_VPATH": key[1]})
        return self.split_modules[key]
