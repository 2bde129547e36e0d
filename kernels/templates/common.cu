// ---- rules proposer: helpers shared by every generated kernel (common.cu) -------------------
// Arithmetic is fp32 ("opmath", as PyTorch's kernels); bf16 / fp16 are storage types held in
// unsigned short, widened on load and rounded to nearest-even once per result. No #include:
// the source compiles unchanged under NVRTC and nvcc (sm_80 and newer). Outside device code
// (__CUDA_ARCH__ undefined) the conversions fall back to portable C++.
#ifndef RULES_COMMON_CU
#define RULES_COMMON_CU

#define RULES_NEG_INF (__int_as_float(0xff800000))
#define RULES_POS_INF (__int_as_float(0x7f800000))
#define RULES_NAN (__int_as_float(0x7fc00000))
#define RULES_FULL_MASK 0xffffffffu
// One statement per vector lane, always unrolled (so lane arrays stay in registers).
#define RULES_LANES _Pragma("unroll") for (int u = 0; u < VEC; ++u)
// Host-side emulation (tests) checks every vector access's alignment; device code never does.
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
#define RULES_ALIGNED(p, bytes) rules_emu_check_align((const void*)(p), (bytes))
#else
#define RULES_ALIGNED(p, bytes)
#endif

__device__ __forceinline__ float bf16_to_f32(unsigned short h) {
    return __uint_as_float(((unsigned int)h) << 16);
}

__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
#if defined(__CUDA_ARCH__)
    unsigned short r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(f));
    return r;
#else
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
#endif
}

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
#if defined(__CUDA_ARCH__)
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return rules_host_f16_to_f32(h);
#endif
}

__device__ __forceinline__ unsigned short f32_to_f16(float f) {
#if defined(__CUDA_ARCH__)
    unsigned short r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r) : "f"(f));
    return r;
#else
    return rules_host_f32_to_f16(f);
#endif
}

__device__ __forceinline__ float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }
__device__ __forceinline__ float round_f16(float f) { return f16_to_f32(f32_to_f16(f)); }

// ---- vector memory: V consecutive elements, 16-byte (or narrower) accesses -------------------
// Callers guarantee alignment to V * sizeof(element) bytes.
// Vector stores spelled out in PTX: NVVM splits a float4 / uint4 store through a pointer
// offset by a 64-bit row index inside a loop (the row kernels' o + row * D) into four
// 4-byte stores (seen in the PTX of every fp32 row kernel under CUDA 13), which quadruples
// the store instructions of a bandwidth-bound kernel. Generic addressing: global or shared.
#if defined(__CUDA_ARCH__)
#define RULES_ST4(p, T, C, a, b, c, d) \
    asm volatile("st.v4." T " [%0], {%1, %2, %3, %4};" :: "l"(p), C(a), C(b), C(c), C(d) : "memory")
#define RULES_ST2(p, T, C, a, b) asm volatile("st.v2." T " [%0], {%1, %2};" :: "l"(p), C(a), C(b) : "memory")
#else
#define RULES_ST4(p, T, C, a, b, c, d) do { (p)[0] = (a); (p)[1] = (b); (p)[2] = (c); (p)[3] = (d); } while (0)
#define RULES_ST2(p, T, C, a, b) do { (p)[0] = (a); (p)[1] = (b); } while (0)
#endif

template <int V>
__device__ __forceinline__ void load_f32(const float* p, float* v) {
    RULES_ALIGNED(p, V * 4);
    if constexpr (V == 1) {
        v[0] = p[0];
    } else if constexpr (V == 2) {
        const float2 t = *reinterpret_cast<const float2*>(p);
        v[0] = t.x; v[1] = t.y;
    } else {
        static_assert(V % 4 == 0, "VEC must be 1, 2 or a multiple of 4");
        #pragma unroll
        for (int i = 0; i < V; i += 4) {
            const float4 t = *reinterpret_cast<const float4*>(p + i);
            v[i] = t.x; v[i + 1] = t.y; v[i + 2] = t.z; v[i + 3] = t.w;
        }
    }
}

template <int V>
__device__ __forceinline__ void store_f32(float* p, const float* v) {
    RULES_ALIGNED(p, V * 4);
    if constexpr (V == 1) {
        p[0] = v[0];
    } else if constexpr (V == 2) {
        RULES_ST2(p, "f32", "f", v[0], v[1]);
    } else {
        #pragma unroll
        for (int i = 0; i < V; i += 4)
            RULES_ST4(p + i, "f32", "f", v[i], v[i + 1], v[i + 2], v[i + 3]);
    }
}

// Half-precision storage: W(h) widens one 16-bit value, N(f) narrows one float.
#define RULES_HALF_VEC(NAME, W, N)                                                              \
template <int V>                                                                                \
__device__ __forceinline__ void load_##NAME(const unsigned short* p, float* v) {                \
    RULES_ALIGNED(p, V * 2);                                                                    \
    if constexpr (V == 1) {                                                                     \
        v[0] = W(p[0]);                                                                         \
    } else if constexpr (V == 2) {                                                              \
        const unsigned int t = *reinterpret_cast<const unsigned int*>(p);                       \
        v[0] = W((unsigned short)(t & 0xffffu)); v[1] = W((unsigned short)(t >> 16));           \
    } else if constexpr (V == 4) {                                                              \
        const uint2 t = *reinterpret_cast<const uint2*>(p);                                     \
        v[0] = W((unsigned short)(t.x & 0xffffu)); v[1] = W((unsigned short)(t.x >> 16));       \
        v[2] = W((unsigned short)(t.y & 0xffffu)); v[3] = W((unsigned short)(t.y >> 16));       \
    } else {                                                                                    \
        static_assert(V % 8 == 0, "VEC must be 1, 2, 4 or a multiple of 8");                    \
        _Pragma("unroll")                                                                       \
        for (int i = 0; i < V; i += 8) {                                                        \
            const uint4 t = *reinterpret_cast<const uint4*>(p + i);                             \
            const unsigned int w[4] = {t.x, t.y, t.z, t.w};                                     \
            _Pragma("unroll")                                                                   \
            for (int k = 0; k < 4; ++k) {                                                       \
                v[i + 2 * k] = W((unsigned short)(w[k] & 0xffffu));                             \
                v[i + 2 * k + 1] = W((unsigned short)(w[k] >> 16));                             \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
__device__ __forceinline__ unsigned int pack_##NAME(float lo, float hi) {                       \
    return (unsigned int)N(lo) | ((unsigned int)N(hi) << 16);                                   \
}                                                                                               \
template <int V>                                                                                \
__device__ __forceinline__ void store_##NAME(unsigned short* p, const float* v) {               \
    RULES_ALIGNED(p, V * 2);                                                                    \
    if constexpr (V == 1) {                                                                     \
        p[0] = N(v[0]);                                                                         \
    } else if constexpr (V == 2) {                                                              \
        *reinterpret_cast<unsigned int*>(p) = pack_##NAME(v[0], v[1]);                          \
    } else if constexpr (V == 4) {                                                              \
        unsigned int* const q_ = reinterpret_cast<unsigned int*>(p);                            \
        RULES_ST2(q_, "u32", "r", pack_##NAME(v[0], v[1]), pack_##NAME(v[2], v[3]));             \
    } else {                                                                                    \
        _Pragma("unroll")                                                                       \
        for (int i = 0; i < V; i += 8) {                                                        \
            unsigned int* const q_ = reinterpret_cast<unsigned int*>(p + i);                    \
            RULES_ST4(q_, "u32", "r", pack_##NAME(v[i], v[i + 1]), pack_##NAME(v[i + 2], v[i + 3]), \
                      pack_##NAME(v[i + 4], v[i + 5]), pack_##NAME(v[i + 6], v[i + 7]));         \
        }                                                                                       \
    }                                                                                           \
}

RULES_HALF_VEC(bf16, bf16_to_f32, f32_to_bf16)
RULES_HALF_VEC(f16, f16_to_f32, f32_to_f16)

// ---- L2 eviction hints for streaming passes (sm_80+): a row that a later pass reads again
// is loaded "evict last" (it should still be in L2 then), the last read of it "evict first",
// and operands every row shares (weights) "evict last". Only 16-byte loads of read-only
// inputs take a hint (the asm is not volatile, so it may be scheduled like a plain load);
// everything else, and host-side emulation, loads plainly.
#define RULES_EVICT_NORMAL 0
#define RULES_EVICT_FIRST 1
#define RULES_EVICT_LAST 2
#ifndef HINTS
#define HINTS 1  // 0: plain loads everywhere (a tunable: the hints' worth depends on the shape)
#endif
#if defined(__CUDA_ARCH__)
template <int H>
__device__ __forceinline__ uint4 rules_ld16(const void* p) {
    uint4 r;
    if constexpr (HINTS && H == RULES_EVICT_LAST) {
        unsigned long long pol;
        asm("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
        asm("ld.global.L1::evict_last.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
            : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p), "l"(pol));
    } else if constexpr (HINTS && H == RULES_EVICT_FIRST) {
        unsigned long long pol;
        asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
        asm("ld.global.L1::evict_first.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
            : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p), "l"(pol));
    } else {
        r = *reinterpret_cast<const uint4*>(p);
    }
    return r;
}
#else
template <int H>
__device__ __forceinline__ uint4 rules_ld16(const void* p) {
    RULES_ALIGNED(p, 16);
    return *reinterpret_cast<const uint4*>(p);
}
#endif

template <int V, int H>
__device__ __forceinline__ void load_f32_hint(const float* p, float* v) {
    if constexpr (V % 4 == 0 && H != RULES_EVICT_NORMAL) {
        #pragma unroll
        for (int i = 0; i < V; i += 4) {
            const uint4 t = rules_ld16<H>(p + i);
            v[i] = __uint_as_float(t.x); v[i + 1] = __uint_as_float(t.y);
            v[i + 2] = __uint_as_float(t.z); v[i + 3] = __uint_as_float(t.w);
        }
    } else {
        load_f32<V>(p, v);
    }
}

#define RULES_HALF_HINT(NAME, W)                                                                \
template <int V, int H>                                                                         \
__device__ __forceinline__ void load_##NAME##_hint(const unsigned short* p, float* v) {         \
    if constexpr (V % 8 == 0 && H != RULES_EVICT_NORMAL) {                                      \
        _Pragma("unroll")                                                                       \
        for (int i = 0; i < V; i += 8) {                                                        \
            const uint4 t = rules_ld16<H>(p + i);                                               \
            const unsigned int w[4] = {t.x, t.y, t.z, t.w};                                     \
            _Pragma("unroll")                                                                   \
            for (int k = 0; k < 4; ++k) {                                                       \
                v[i + 2 * k] = W((unsigned short)(w[k] & 0xffffu));                             \
                v[i + 2 * k + 1] = W((unsigned short)(w[k] >> 16));                             \
            }                                                                                   \
        }                                                                                       \
    } else {                                                                                    \
        load_##NAME<V>(p, v);                                                                   \
    }                                                                                           \
}
RULES_HALF_HINT(bf16, bf16_to_f32)
RULES_HALF_HINT(f16, f16_to_f32)

// Occupancy asked of the compiler: OCC percent of an SM's 2048 threads resident, so at most
// 65536 / (OCC% x 2048) registers per thread (OCC 0: no limit). Streaming kernels need bytes
// in flight, which registers beyond that do not buy.
#ifndef PIPE
#define PIPE 0  // row_cluster.cu: a persistent grid with double-buffered slices (0: a cluster per row)
#endif
#ifndef OCC
#define OCC 0
#endif
#define RULES_MINB ((OCC) * 2048 / 100 / (BLOCK) > 0 ? (OCC) * 2048 / 100 / (BLOCK) : 1)

// ---- reductions: warp shuffles, then one value per warp through shared memory ---------------
// max / min propagate NaN (as torch.amax does); argmax / argmin take the first index on ties
// and count NaN as the extreme, as PyTorch documents.
// On sm_80 and later one max.NaN / min.NaN instruction (FMNMX.NAN); the comparison form below it
// took five (two FSETP, PLOP3, two FSEL with a mask; NVRTC 13, sm_90) in every max-reducing loop.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ float rules_max(float a, float b) {
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float rules_min(float a, float b) {
    float r;
    asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
#else
__device__ __forceinline__ float rules_max(float a, float b) { return (b > a || b != b) ? b : a; }
__device__ __forceinline__ float rules_min(float a, float b) { return (b < a || b != b) ? b : a; }
#endif

__device__ __forceinline__ bool rules_argbetter(float v, long long i, float bv, long long bi, bool is_max) {
    if (v != v) return bv == bv || i < bi;
    if (bv != bv) return false;
    if (v == bv) return i < bi;
    return is_max ? v > bv : v < bv;
}

// One thread's scan step, where every index it sees is larger than those before: (v, i)
// replaces (bv, bi) when v is strictly better, is the first NaN, or is the first value seen
// (bi still RULES_ARG_EMPTY). Ties keep the earlier index. No branches, so the UNROLL slots'
// updates interleave: rules_argbetter's four branches and 64-bit index compare per element
// made argmax over dim 1 of (64, 4096, 2047) fp32 0.74x torch.compile on an H200 (sum: 1.29x).
#define RULES_ARG_EMPTY 0x7fffffffffffffffLL
__device__ __forceinline__ bool rules_argtake(float v, float bv, long long bi, bool is_max) {
    const bool better = is_max ? v > bv : v < bv;
    return better | ((v != v) & (bv == bv)) | (bi == RULES_ARG_EMPTY);
}

// exp and reciprocal, FASTEXP 1 (the default): the hardware's ex2 and rcp (__expf: relative
// error at most about |x| * 2^-24 * ln 2 plus 2 ulp, so under 6e-6 over the whole range where
// expf is finite; rcp.approx: 1 ulp), a few instructions each, where libdevice's expf and an
// IEEE division take about ten each with a slow path. Measured on an H200, those sequences
// made every softmax-like row kernel arithmetic-bound: 45 instructions an element against a
// memory floor that allows about 20 (softmax over 64k-element fp32 rows at 47% of copy
// bandwidth). The evaluator's fp32 tolerance is 1e-4, so fp32 results use the fast path too;
// FASTEXP 0 (searched) gives the correctly rounded sequences.
#ifndef FASTEXP
#define FASTEXP 1
#endif
__device__ __forceinline__ float rules_exp(float x) {
#if FASTEXP && defined(__CUDA_ARCH__)
    return __expf(x);
#else
    return expf(x);
#endif
}

// 1 / x for x >= 1 or x = inf (sigmoid, SiLU): rcp.approx under FASTEXP. __fdividef is 0 for
// x >= 2^126, where the exact result is under 1e-38.
__device__ __forceinline__ float rules_rcp(float x) {
#if FASTEXP && defined(__CUDA_ARCH__)
    return __fdividef(1.0f, x);
#else
    return 1.0f / x;
#endif
}

// Online log-sum-exp state: m = running max, s = sum of exp(x - m). Empty: (-inf, 0).
__device__ __forceinline__ void lse_add(float& m, float& s, float x) {
    if (x > m) {
        s = s * rules_exp(m - x) + 1.0f;
        m = x;
    } else if (m != RULES_NEG_INF || x != x) {
        s += rules_exp(x - m);
    }
}

__device__ __forceinline__ void lse_merge(float& m, float& s, float m2, float s2) {
    const float M = rules_max(m, m2);
    if (M == RULES_NEG_INF) return;
    s = (m == RULES_NEG_INF ? 0.0f : s * rules_exp(m - M)) + (m2 == RULES_NEG_INF ? 0.0f : s2 * rules_exp(m2 - M));
    m = M;
}

// One warp-wide and one block-wide reduction, for each associative operator below; every lane
// gets the result, combined in a fixed order (deterministic).
struct RulesSum { __device__ __forceinline__ float operator()(float a, float b) const { return a + b; } };
struct RulesProd { __device__ __forceinline__ float operator()(float a, float b) const { return a * b; } };
struct RulesMax { __device__ __forceinline__ float operator()(float a, float b) const { return rules_max(a, b); } };
struct RulesMin { __device__ __forceinline__ float operator()(float a, float b) const { return rules_min(a, b); } };

template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(RULES_FULL_MASK, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, RulesSum()); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce(v, RulesMax()); }
__device__ __forceinline__ float warp_min(float v) { return warp_reduce(v, RulesMin()); }
__device__ __forceinline__ float warp_prod(float v) { return warp_reduce(v, RulesProd()); }
__device__ __forceinline__ void warp_arg(float& v, long long& i, bool is_max) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v2 = __shfl_xor_sync(RULES_FULL_MASK, v, o);
        const long long i2 = __shfl_xor_sync(RULES_FULL_MASK, i, o);
        if (rules_argbetter(v2, i2, v, i, is_max)) { v = v2; i = i2; }
    }
}
__device__ __forceinline__ void warp_lse(float& m, float& s) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(RULES_FULL_MASK, m, o);
        const float s2 = __shfl_xor_sync(RULES_FULL_MASK, s, o);
        lse_merge(m, s, m2, s2);
    }
}

// Block-wide versions: every thread of the NT threads gets the result. NT == 32 is one warp
// and synchronizes nothing, so warp-per-row kernels can call them inside divergent loops.
template <int NT, typename Op>
__device__ __forceinline__ float block_reduce(float v, Op op, float identity) {
    v = warp_reduce(v, op);
    if constexpr (NT > 32) {
        __shared__ float part[NT / 32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) part[warp] = v;
        __syncthreads();
        v = warp_reduce(lane < NT / 32 ? part[lane] : identity, op);
    }
    return v;
}
template <int NT> __device__ __forceinline__ float block_sum(float v) { return block_reduce<NT>(v, RulesSum(), 0.0f); }
template <int NT> __device__ __forceinline__ float block_prod(float v) { return block_reduce<NT>(v, RulesProd(), 1.0f); }
template <int NT>
__device__ __forceinline__ float block_max(float v) { return block_reduce<NT>(v, RulesMax(), RULES_NEG_INF); }
template <int NT>
__device__ __forceinline__ float block_min(float v) { return block_reduce<NT>(v, RulesMin(), RULES_POS_INF); }

template <int NT>
__device__ __forceinline__ void block_arg(float& v, long long& i, bool is_max) {
    warp_arg(v, i, is_max);
    if constexpr (NT > 32) {
        __shared__ float pv[NT / 32];
        __shared__ long long pi[NT / 32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) { pv[warp] = v; pi[warp] = i; }
        __syncthreads();
        v = lane < NT / 32 ? pv[lane] : (is_max ? RULES_NEG_INF : RULES_POS_INF);
        i = lane < NT / 32 ? pi[lane] : 0x7fffffffffffffffLL;
        warp_arg(v, i, is_max);
    }
}

template <int NT>
__device__ __forceinline__ void block_lse(float& m, float& s) {
    warp_lse(m, s);
    if constexpr (NT > 32) {
        __shared__ float pm[NT / 32], ps[NT / 32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) { pm[warp] = m; ps[warp] = s; }
        __syncthreads();
        m = lane < NT / 32 ? pm[lane] : RULES_NEG_INF;
        s = lane < NT / 32 ? ps[lane] : 0.0f;
        warp_lse(m, s);
    }
}

// ---- column reductions across the NW warps of a block (col.cu, mode colsplit) ---------------
// Lane l of every warp holds partial states of the same V columns (vector lanes); each thread
// gets the states of its lane merged over the warps in warp order (deterministic). Shared
// memory is [NW][V][32]: consecutive lanes hit consecutive banks. NW == 1 does nothing.
#define RULES_COLWARP1(NAME, MERGE)                                                             \
template <int NW, int V>                                                                        \
__device__ __forceinline__ void colwarp_##NAME(float* v) {                                      \
    if constexpr (NW > 1) {                                                                     \
        __shared__ float sh[NW][V][32];                                                         \
        const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;                                \
        __syncthreads();                                                                        \
        _Pragma("unroll") for (int u = 0; u < V; ++u) sh[w][u][lane] = v[u];                    \
        __syncthreads();                                                                        \
        _Pragma("unroll") for (int u = 0; u < V; ++u) {                                         \
            float a = sh[0][u][lane];                                                           \
            for (int k = 1; k < NW; ++k) { const float b = sh[k][u][lane]; MERGE; }             \
            v[u] = a;                                                                           \
        }                                                                                       \
    }                                                                                           \
}
RULES_COLWARP1(sum, a += b)
RULES_COLWARP1(prod, a *= b)
RULES_COLWARP1(max, a = rules_max(a, b))
RULES_COLWARP1(min, a = rules_min(a, b))

template <int NW, int V>
__device__ __forceinline__ void colwarp_arg(float* v, long long* i, bool is_max) {
    if constexpr (NW > 1) {
        __shared__ float sv[NW][V][32];
        __shared__ long long si[NW][V][32];
        const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < V; ++u) { sv[w][u][lane] = v[u]; si[w][u][lane] = i[u]; }
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < V; ++u) {
            float a = sv[0][u][lane];
            long long ia = si[0][u][lane];
            for (int k = 1; k < NW; ++k)
                if (rules_argbetter(sv[k][u][lane], si[k][u][lane], a, ia, is_max)) { a = sv[k][u][lane]; ia = si[k][u][lane]; }
            v[u] = a; i[u] = ia;
        }
    }
}

template <int NW, int V>
__device__ __forceinline__ void colwarp_lse(float* m, float* s) {
    if constexpr (NW > 1) {
        __shared__ float sm[NW][V][32], ss[NW][V][32];
        const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < V; ++u) { sm[w][u][lane] = m[u]; ss[w][u][lane] = s[u]; }
        __syncthreads();
        #pragma unroll
        for (int u = 0; u < V; ++u) {
            float a = sm[0][u][lane], b = ss[0][u][lane];
            for (int k = 1; k < NW; ++k) lse_merge(a, b, sm[k][u][lane], ss[k][u][lane]);
            m[u] = a; s[u] = b;
        }
    }
}


// ---- rows cached in shared memory, split across a thread-block cluster (row_cluster.cu) ----
// CLUSTER blocks (1, 2, 4 or 8: the portable sizes) share a row, each caching its slice in
// dynamic shared memory; partial states cross the cluster through distributed shared memory
// (mapa + barrier.cluster, sm_90). The size is fixed at compile time (__cluster_dims__), so a
// plain launch works; CLUSTER 1 is one block per row on any architecture. Host-side
// emulation (tests) runs a cluster's blocks together and maps ranks itself.
#ifndef CLUSTER
#define CLUSTER 1
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && CLUSTER > 1
#define RULES_CLUSTER_ATTR __cluster_dims__(CLUSTER, 1, 1)
#define RULES_CLUSTER_HW 1
#else
#define RULES_CLUSTER_ATTR
#define RULES_CLUSTER_HW 0
#endif
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
#define RULES_DYN_SMEM(name) unsigned char* const name = (unsigned char*)rules_emu_dyn_smem()
#else
#define RULES_DYN_SMEM(name) extern __shared__ __align__(16) unsigned char rules_dsmem_[]; \
    unsigned char* const name = rules_dsmem_
#endif

// The block's rank in its cluster (blockIdx.x % CLUSTER for a 1-D cluster).
__device__ __forceinline__ unsigned rules_cluster_rank() { return (unsigned)(blockIdx.x % CLUSTER); }

// The same shared-memory location in the block of rank r of this cluster (a generic pointer).
template <typename T>
__device__ __forceinline__ const T* rules_map_rank(const T* p, unsigned r) {
#if RULES_CLUSTER_HW
    unsigned long long out;
    asm volatile("mapa.u64 %0, %1, %2;" : "=l"(out) : "l"(p), "r"(r) : "memory");
    return reinterpret_cast<const T*>(out);
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    return reinterpret_cast<const T*>(rules_emu_map_rank(p, r));
#else
    (void)r;
    return p;
#endif
}

// Cluster barrier, split: arrive (release: this thread's shared-memory writes become visible
// to the cluster), then wait (acquire). Every thread of every block of the cluster takes part.
// CLUSTER 1: arrive is nothing and wait a block barrier.
__device__ __forceinline__ void rules_cluster_arrive() {
#if RULES_CLUSTER_HW
    asm volatile("barrier.cluster.arrive.release;" ::: "memory");
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    if (CLUSTER > 1) rules_emu_cluster_arrive();
#endif
}
__device__ __forceinline__ void rules_cluster_wait() {
#if RULES_CLUSTER_HW
    asm volatile("barrier.cluster.wait.acquire;" ::: "memory");
#elif !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)
    if (CLUSTER > 1) rules_emu_cluster_wait(); else __syncthreads();
#else
    __syncthreads();
#endif
}

// Asynchronous global -> shared copies of BYTES (4, 8 or 16; others copy through registers),
// completed by rules_cp_wait() in the same thread (no barrier needed when each thread reads
// back only what it copied).
template <int BYTES>
__device__ __forceinline__ void rules_cp_async(void* dst, const void* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if constexpr (BYTES == 16 || BYTES == 8 || BYTES == 4) {
        unsigned a;
        asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(dst));
        if constexpr (BYTES == 16)
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(a), "l"(src) : "memory");
        else
            asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" :: "r"(a), "l"(src), "n"(BYTES) : "memory");
    } else {
        #pragma unroll
        for (int i = 0; i < BYTES / 2; ++i)
            reinterpret_cast<unsigned short*>(dst)[i] = reinterpret_cast<const unsigned short*>(src)[i];
    }
#else
    RULES_ALIGNED(dst, BYTES);
    RULES_ALIGNED(src, BYTES);
    memcpy(dst, src, BYTES);
#endif
}
// Close the group of copies issued so far (rules_cp_wait_group waits on whole groups).
__device__ __forceinline__ void rules_cp_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void rules_cp_wait_group() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");
#endif
}
__device__ __forceinline__ void rules_cp_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

#endif  // RULES_COMMON_CU
