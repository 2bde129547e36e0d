// Decode matrix-vector core shared by the decode seeds (scripts/gen_decode_seeds.py pastes it
// into each seed: a candidate is one self-contained module). y = W x for bf16 W [N, K]
// row-major (an nn.Linear weight) and NB <= 8 activation rows x [NB, K], fp32 accumulation.
//
// Work: a warp owns UPW "units" (a unit is one output row, or a pair of rows an epilogue
// needs together: gate j with up j, a rotary pair d with d + D/2) and one of SPLITS ranges of
// K; its lanes stream the rows in 16-byte vectors (8 bf16 per lane, 256 columns per warp and
// step), UNROLL steps of every row in flight before the first multiply (PIPE: and the next
// UNROLL steps' loads issued before this batch's multiplies), x (normalized on the
// fly where the task has an RMSNorm in front) read once per step for all the warp's rows,
// then a butterfly reduction leaves every lane with every sum. Warps stride over the tasks
// (a grid of at most OCC blocks per SM: all resident). With SPLITS > 1 each range writes fp32
// partial sums; the warp that finishes a unit group's last range adds them in range order
// (deterministic) and runs the epilogue, then resets the group's arrival counter (so graph
// replays see zeros). Programmatic dependent launch: a warp prefetches its first task's
// weight rows into L2 (cp.async.bulk.prefetch) before griddepcontrol.wait, so the weights
// stream while the kernel before is finishing; nothing the previous kernel writes is read
// before the wait. Without the launch attribute the wait returns at once.
// RING > 1 streams the weights through a ring of RING steps per lane in shared memory instead
// (cp.async, no registers held by loads in flight, the producer RING - 1 steps ahead across the
// ends of tasks and before the wait). Not a default: it lost on the whole step everywhere (H200,
// Llama-3.2-1B, 2026-12-02: 0.867 ms with registers; RING 4 1.053, RING 8 1.153, RING 8 on
// gate/up only 0.934).
// Cross-kernel prefetch: the caller may name up to two byte ranges the NEXT kernel will stream
// (pf0 / pf1, e.g. the next projection's weights); each warp, once its own tasks are done,
// prefetches its share of them into L2, so DRAM stays busy through this kernel's tail, the
// launch gap and the next kernel's ramp. A hint only: it changes no value (0 bytes: none).
// Early epilogue inputs (a.early, the seeds' EARLY; the engine sets it per call): the epilogue's
// inputs that the kernel before this one does not write (the residual; q/k/v's position and the
// rotary rows at it) are read before griddepcontrol.wait, so their L2 round trips (two chained
// ones for the position and its rows) leave the chain that runs after the previous kernel
// ends. Safe off PDL (stream order) and under PDL where the kernel before this one executes its
// own wait before it lets this one start (then every kernel before it has completed); not where
// it launches its dependents first (TRIGGER, the step's input kernel).
#ifndef NB
#define NB 1
#endif
#ifndef UPW
#define UPW 1
#endif
#ifndef UNROLL
#define UNROLL 4
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef PREFETCH
#define PREFETCH 1
#endif
#ifndef PIPE  // 1: each batch of UNROLL steps loads the next batch before its multiplies (the host: long rows)
#define PIPE 0
#endif
#ifndef RING  // > 1: the weights stream through a ring of RING steps per lane in shared memory
#define RING 0   // (cp.async: no registers held by loads in flight; the 16-byte path only)
#endif
#ifndef TRIGGER  // 1: griddepcontrol.launch_dependents before this kernel's wait, not after it
#define TRIGGER 0   // (see gemv_entry; never in the q/k/v kernel, whose successor reads before its wait)
#endif
#ifndef MINB  // > 0: __launch_bounds__'s minimum blocks per SM, a register cap of 64K / (MINB x threads),
#define MINB 0   // so that the next kernel's blocks fit beside this one's under PDL (the seeds' MINB knob).
#endif           // q/k/v at Llama's defaults (nvcc 13 sm_90): 168 registers; MINB 4: 128, no spills, and
                 // with OCC 2 the attention kernel's 112 x 256 then fits beside its two blocks an SM;
                 // MINB 5: 96 with 142 bytes of spills. gate/up 127 (MINB 3: 80, spills); down 93.
                 // Measured on the whole step, MINB 4 on q/k/v lost 0.5% (H200, 2026-12-03; see PARAMS).
#if MINB > 0
#define GEMV_BOUNDS WARPS * 32, MINB
#else
#define GEMV_BOUNDS WARPS * 32  // not (.., 1): that lets nvcc take more registers (q/k/v: 194)
#endif
#ifndef XS  // 1: the activations in shared memory (the 16-byte path; the host sizes it: NB * K bf16).
#define XS 0  // The seeds' XSMEM parameter (the host: on where the activations are short, see xs_bytes)
#endif
#define NEG_INF __int_as_float(0xff800000)

#if !defined(__CUDA_ARCH__)  // the CPU emulator of the tests runs blocks one after another
#define __ldg(p) (*(p))
#define __ldcg(p) (*(p))
#define __threadfence()
__device__ __forceinline__ int atomicAdd(int* p, int v) { const int old = *p; *p = old + v; return old; }
#endif

__device__ __forceinline__ float bf(unsigned short h) { return __uint_as_float(((unsigned int)h) << 16); }
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
__device__ __forceinline__ float rb(float v) { return bf(to_bf(v)); }  // a bf16 rounding point

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
__device__ __forceinline__ void prefetch_l2(const void* p, unsigned int bytes) {  // p 16-aligned, bytes % 16 == 0
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(p), "r"(bytes) : "memory");
#endif
}

// A weight vector: read once, so it skips L1.
__device__ __forceinline__ uint4 ld_stream(const unsigned short* p) {
#if defined(__CUDA_ARCH__)
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
    return r;
#else
    return *reinterpret_cast<const uint4*>(p);
#endif
}

// V consecutive bf16 as floats: V = 8 (one 16-byte vector) or 1 (any alignment).
template <int V> struct Vec { float f[V]; };
template <int V> __device__ __forceinline__ Vec<V> unpack_raw(uint4 w, unsigned short s);
template <> __device__ __forceinline__ Vec<8> unpack_raw<8>(uint4 w, unsigned short) {
    Vec<8> v;
    v.f[0] = bf_lo(w.x); v.f[1] = bf_hi(w.x); v.f[2] = bf_lo(w.y); v.f[3] = bf_hi(w.y);
    v.f[4] = bf_lo(w.z); v.f[5] = bf_hi(w.z); v.f[6] = bf_lo(w.w); v.f[7] = bf_hi(w.w);
    return v;
}
template <> __device__ __forceinline__ Vec<1> unpack_raw<1>(uint4, unsigned short s) { Vec<1> v; v.f[0] = bf(s); return v; }

template <int V> struct Raw { uint4 w; unsigned short s; };
template <int V> __device__ __forceinline__ Raw<V> load_w(const unsigned short* p, bool ok);
template <> __device__ __forceinline__ Raw<8> load_w<8>(const unsigned short* p, bool ok) {
    Raw<8> r; r.s = 0;
    r.w = ok ? ld_stream(p) : make_uint4(0u, 0u, 0u, 0u);
    return r;
}
template <> __device__ __forceinline__ Raw<1> load_w<1>(const unsigned short* p, bool ok) {
    Raw<1> r; r.w = make_uint4(0u, 0u, 0u, 0u);
    r.s = ok ? __ldg(p) : (unsigned short)0;
    return r;
}
#if XS || RING
#if !defined(__CUDA_ARCH__) && defined(RULES_EMULATE)  // the CPU emulator: each block's own buffer
#define GEMV_DYN() ((unsigned short*)rules_emu_dyn_smem())
#else
extern __shared__ __align__(16) unsigned short gemv_dyn_[];
#define GEMV_DYN() (gemv_dyn_)
#endif
#endif
#if XS
#define GEMV_XS(name) unsigned short* const name = GEMV_DYN()
#endif
template <int V> __device__ __forceinline__ Vec<V> load_x(const unsigned short* p, bool ok);
template <> __device__ __forceinline__ Vec<8> load_x<8>(const unsigned short* p, bool ok) {
    const uint4 w = ok ? __ldg(reinterpret_cast<const uint4*>(p)) : make_uint4(0u, 0u, 0u, 0u);
    return unpack_raw<8>(w, 0);
}
template <> __device__ __forceinline__ Vec<1> load_x<1>(const unsigned short* p, bool ok) {
    Vec<1> v; v.f[0] = ok ? bf(__ldg(p)) : 0.0f; return v;
}

// An activation piece: from shared memory (XS: the host takes the 16-byte path only) or global memory.
template <int V> __device__ __forceinline__ Vec<V> load_act(const unsigned short* p, bool ok) {
#if XS
    if constexpr (V == 8) {
        const uint4 w = ok ? *reinterpret_cast<const uint4*>(p) : make_uint4(0u, 0u, 0u, 0u);
        return unpack_raw<8>(w, 0);
    }
#endif
    return load_x<V>(p, ok);
}

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

enum { M_PLAIN = 0, M_RESID = 1, M_SILU = 2, M_QKV = 3, M_LMHEAD = 4 };
template <int MODE> struct RowsPerUnit { static constexpr int value = (MODE == M_SILU || MODE == M_QKV) ? 2 : 1; };
template <int MODE> struct UnitRows { static constexpr int value = UPW * RowsPerUnit<MODE>::value; };  // rows a task streams

struct GemvArgs {
    const unsigned short* x;        // [NB, K] activations (before the norm where NORM)
    const unsigned short* nw;       // [K] RMSNorm weight (NORM)
    float eps;
    const unsigned short* w;        // [rows, K]
    const unsigned short* bias;     // [rows] or null
    long long K;
    long long units;                // outputs per activation row (rows / RowsPerUnit)
    int splits;                     // ranges of K
    float* part;                    // [splits, NB, rows] fp32 partial sums (SPLITS > 1)
    int* counters;                  // [unit groups] arrival counters, zero between calls; [groups]: the argmax's
    unsigned short* y;              // PLAIN / RESID / SILU / LMHEAD output [NB, units]
    const unsigned short* res;      // RESID: residual [NB, units]
    float mult;                     // RESID: y = res + bf(a * mult); LMHEAD: logits = bf(a / mult)
    int H, KVH, D;                  // QKV: heads, KV heads, head_dim
    long long L;                    // QKV: cache positions
    const unsigned short* cos;      // QKV: [L, D] bf16 tables
    const unsigned short* sin;
    const long long* pos;           // QKV: [1] the position written (a device value: graph-safe)
    unsigned short* q;              // QKV: [NB, H, D]
    unsigned short* kc;             // QKV: [NB, KVH, L, D]
    unsigned short* vc;
    float* amax_v;                  // LMHEAD: [NB, warps in the grid] each warp's best logit
    int* amax_i;                    //          and its (first) index
    long long* token;               // LMHEAD: [NB] argmax
    const unsigned short* pf0;      // the next kernel's bytes to prefetch into L2 (hints, may be null)
    long long pf0_bytes;
    const unsigned short* pf1;
    long long pf1_bytes;
    int early;                      // 1: the epilogue's inputs read before the PDL wait (see above)
};

// A lane's epilogue inputs for one unit, read ahead (EpiIn::ok), else read by the epilogue. Through
// L2 (ld.global.cg): never a line the read-only path cached before another kernel wrote it.
struct EpiIn {
    bool ok;
    unsigned short r;               // RESID: the residual
    long long p;                    // QKV: the position (clamped) and the rotary rows at it
    unsigned short c0, c1, s0, s1;
};

template <int MODE>
__device__ __forceinline__ EpiIn epi_inputs(const GemvArgs& a, long long g, int lane) {
    EpiIn in;
    in.ok = false; in.r = 0; in.p = 0; in.c0 = in.c1 = in.s0 = in.s1 = 0;
    if (MODE != M_RESID && MODE != M_QKV) return in;
    if (lane >= NB * UPW) return in;
    const int b = lane / UPW;
    const long long u = g * UPW + lane % UPW;
    if (u >= a.units) return in;
    in.ok = true;
    if (MODE == M_RESID) {
        in.r = __ldcg(a.res + b * a.units + u);
    } else {
        const int D = a.D, half = D >> 1;
        const long long head = u / half;
        const int dd = (int)(u - head * half);
        long long p = __ldcg(a.pos);
        in.p = p < 0 ? 0 : (p >= a.L ? a.L - 1 : p);
        if (head < a.H + a.KVH) {
            in.c0 = __ldcg(a.cos + in.p * D + dd); in.c1 = __ldcg(a.cos + in.p * D + dd + half);
            in.s0 = __ldcg(a.sin + in.p * D + dd); in.s1 = __ldcg(a.sin + in.p * D + dd + half);
        }
    }
    return in;
}

// This warp's share (warp gw of tw) of a range the next kernel reads: into L2, 16-byte granules.
__device__ __forceinline__ void prefetch_share(const unsigned short* p, long long bytes, long long gw, long long tw,
                                               int lane) {
    if (p == 0 || bytes < 16) return;
    const long long granules = bytes >> 4;
    const long long per = (granules + tw - 1) / tw;
    const long long g0 = gw * per;
    const long long g1 = g0 + per < granules ? g0 + per : granules;
    const char* base = reinterpret_cast<const char*>(p);
    for (long long g = g0 + (long long)lane * 256; g < g1; g += 32 * 256) {  // 4 KB per lane and step
        const long long n = g1 - g < 256 ? g1 - g : 256;
        prefetch_l2(base + (g << 4), (unsigned int)(n << 4));
    }
}

template <int MODE>
__device__ __forceinline__ long long unit_row(const GemvArgs& a, long long u, int j) {
    if (MODE == M_SILU) return u + j * a.units;
    if (MODE == M_QKV) {
        const int half = a.D >> 1;
        const long long head = u / half, dd = u - head * half;
        return head * a.D + dd + j * half;
    }
    return u;
}

// The epilogue of one (activation row b, unit u) with the full sums v0 (and v1).
template <int MODE>
__device__ __forceinline__ void epilogue(const GemvArgs& a, int b, long long u, float v0, float v1,
                                         const EpiIn& in, float& best_v, long long& best_i) {
    if (MODE == M_PLAIN) {
        a.y[b * a.units + u] = to_bf(v0 + (a.bias ? bf(a.bias[u]) : 0.0f));
    } else if (MODE == M_RESID) {
        float t = rb(v0 + (a.bias ? bf(a.bias[u]) : 0.0f));
        if (a.mult != 1.0f) t = rb(t * a.mult);
        a.y[b * a.units + u] = to_bf(bf(in.ok ? in.r : a.res[b * a.units + u]) + t);
    } else if (MODE == M_SILU) {
        const float g = rb(v0), up = rb(v1);
        const float s = rb(g / (1.0f + expf(-g)));
        a.y[b * a.units + u] = to_bf(s * up);
    } else if (MODE == M_QKV) {
        const int D = a.D, half = D >> 1;
        const long long head = u / half;
        const int dd = (int)(u - head * half);
        const long long r0 = head * D + dd;
        const float x1 = rb(v0 + (a.bias ? bf(a.bias[r0]) : 0.0f));
        const float x2 = rb(v1 + (a.bias ? bf(a.bias[r0 + half]) : 0.0f));
        long long p = in.ok ? in.p : a.pos[0];
        p = p < 0 ? 0 : (p >= a.L ? a.L - 1 : p);
        if (head < a.H + a.KVH) {  // rotary pair, as Hugging Face's bf16 mul / cat / add round
            const unsigned short* c = a.cos + p * D;
            const unsigned short* s = a.sin + p * D;
            const float c0 = bf(in.ok ? in.c0 : c[dd]), c1 = bf(in.ok ? in.c1 : c[dd + half]);
            const float s0 = bf(in.ok ? in.s0 : s[dd]), s1 = bf(in.ok ? in.s1 : s[dd + half]);
            const unsigned short o1 = to_bf(rb(x1 * c0) + rb(-x2 * s0));
            const unsigned short o2 = to_bf(rb(x2 * c1) + rb(x1 * s1));
            if (head < a.H) {
                unsigned short* o = a.q + ((long long)b * a.H + head) * D;
                o[dd] = o1; o[dd + half] = o2;
            } else {
                unsigned short* o = a.kc + (((long long)b * a.KVH + (head - a.H)) * a.L + p) * D;
                o[dd] = o1; o[dd + half] = o2;
            }
        } else {
            unsigned short* o = a.vc + (((long long)b * a.KVH + (head - a.H - a.KVH)) * a.L + p) * D;
            o[dd] = to_bf(x1); o[dd + half] = to_bf(x2);
        }
    } else {  // M_LMHEAD
        float t = rb(v0);
        if (a.mult != 1.0f) t = rb(t / a.mult);
        a.y[b * a.units + u] = to_bf(t);
        if (t > best_v || (t == best_v && u < best_i)) { best_v = t; best_i = u; }
    }
}

// Task t's weight rows (wr) and the first UNROLL steps of its K range (raw), all loads in flight.
template <int MODE, int V>
__device__ __forceinline__ void task_rows(const GemvArgs& a, long long t, int splits, long long per_split,
                                          const unsigned short** wr, Raw<V> (*raw)[UnitRows<MODE>::value], int lane) {
    constexpr int ROWS = UnitRows<MODE>::value;
    constexpr int STEP = 32 * V;
    const long long g = t / splits, s = t - g * splits;
    const long long k_begin = s * per_split * STEP;
    long long k_end = k_begin + per_split * STEP;
    k_end = k_end < a.K ? k_end : a.K;
    #pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        long long u = g * UPW + r / RowsPerUnit<MODE>::value;
        u = u < a.units ? u : a.units - 1;       // past the end: a valid row, its sum unused
        wr[r] = a.w + unit_row<MODE>(a, u, r % RowsPerUnit<MODE>::value) * a.K;
    }
    const long long k0 = k_begin + (long long)lane * V;
    #pragma unroll
    for (int i = 0; i < UNROLL; ++i) {
        const long long k = k0 + i * STEP;
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) raw[i][r] = load_w<V>(wr[r] + k, k < k_end);
    }
}

// The ring (RING > 1): each lane copies its own 16-byte piece of every row of a step into its
// own slots (cp.async), one commit group per step, and reads back only what it copied, so no
// barrier is needed: cp.async.wait_group RING - 1 after committing step i + RING - 1 means
// step i has landed. The producer runs RING - 1 steps ahead of the multiplies, across the ends of
// tasks, and its first steps go out before griddepcontrol.wait (the weights are constant).
__device__ __forceinline__ void gemv_cp16(void* smem, const void* g) {
#if defined(__CUDA_ARCH__)
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(s), "l"(g) : "memory");
#else
    *reinterpret_cast<uint4*>(smem) = *reinterpret_cast<const uint4*>(g);
#endif
}
__device__ __forceinline__ void gemv_cp_commit() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void gemv_cp_wait() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");
#endif
}

template <int MODE> struct RingCursor {   // the producer's place: task t, its step i of n
    long long t, i, n, k0, k1;
    const unsigned short* w[UnitRows<MODE>::value];
    int stage;
};

template <int MODE>
__device__ __forceinline__ void ring_task(const GemvArgs& a, RingCursor<MODE>& c, long long t, long long tasks,
                                          int splits, long long per_split) {
    constexpr int ROWS = UnitRows<MODE>::value;
    c.t = t; c.i = 0; c.n = 0;
    if (t >= tasks) return;
    const long long g = t / splits, s = t - g * splits;
    c.k0 = s * per_split * 256;
    c.k1 = c.k0 + per_split * 256 < a.K ? c.k0 + per_split * 256 : a.K;
    c.n = (c.k1 - c.k0 + 255) / 256;
    #pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        long long u = g * UPW + r / RowsPerUnit<MODE>::value;
        u = u < a.units ? u : a.units - 1;
        c.w[r] = a.w + unit_row<MODE>(a, u, r % RowsPerUnit<MODE>::value) * a.K;
    }
}

// One step into the ring (nothing past the warp's last task, but always one commit group).
template <int MODE>
__device__ __forceinline__ void ring_produce(const GemvArgs& a, RingCursor<MODE>& c, uint4* ring, long long tw,
                                             long long tasks, int splits, long long per_split, int lane) {
    constexpr int ROWS = UnitRows<MODE>::value;
    if (c.t < tasks) {
        const long long k = c.k0 + c.i * 256 + (long long)lane * 8;
        if (k < c.k1) {
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) gemv_cp16(ring + (c.stage * ROWS + r) * 32, c.w[r] + k);
        }
        if (++c.i == c.n) ring_task<MODE>(a, c, c.t + tw, tasks, splits, per_split);
    }
    gemv_cp_commit();
    c.stage = c.stage + 1 == (RING > 1 ? RING : 1) ? 0 : c.stage + 1;
}

// One step's multiplies: row r's weights w[r] (raw), the activations at column k of each row b.
template <int MODE, int NORM, int V, bool NORMED>
__device__ __forceinline__ void step_fma(const GemvArgs& a, const unsigned short* xsrc, long long k, bool ok,
                                         const float (&inv)[NB], const Raw<V> (&w)[UnitRows<MODE>::value],
                                         float (&acc)[NB][UnitRows<MODE>::value]) {
    constexpr int ROWS = UnitRows<MODE>::value;
    const long long K = a.K;
    Vec<V> nwv;
    if (NORM && !NORMED) nwv = load_x<V>(a.nw + k, ok);
    #pragma unroll
    for (int b = 0; b < NB; ++b) {
        Vec<V> xv = load_act<V>(xsrc + b * K + k, ok);
        if (NORM && !NORMED) {  // LlamaRMSNorm: x * rsqrt(mean + eps) rounded, times the weight, rounded
            #pragma unroll
            for (int e = 0; e < V; ++e) xv.f[e] = rb(nwv.f[e] * rb(xv.f[e] * inv[b]));
        }
        #pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const Vec<V> wv = unpack_raw<V>(w[r].w, w[r].s);
            #pragma unroll
            for (int e = 0; e < V; ++e) acc[b][r] = fmaf(wv.f[e], xv.f[e], acc[b][r]);
        }
    }
}

template <int MODE, int NORM, int V>
__device__ __forceinline__ void gemv_body(const GemvArgs& a) {
    constexpr int RPU = RowsPerUnit<MODE>::value;
    constexpr int ROWS = UPW * RPU;
    constexpr int STEP = 32 * V;                     // columns a warp covers per step
    const int lane = threadIdx.x & 31;
    const long long gw = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5);
    const long long tw = (long long)gridDim.x * WARPS;
    const long long K = a.K;
    const long long groups = (a.units + UPW - 1) / UPW;
    const int splits = a.splits;
    const long long tasks = groups * splits;
    const long long steps = (K + STEP - 1) / STEP;
    const long long per_split = (steps + splits - 1) / splits;
    const long long rows_total = a.units * RPU;

    // 1. before the previous kernel is done: this warp's first tasks' weights into L2
#if PREFETCH
    if (V == 8) {
        for (long long t = gw; t < tasks && t < gw + PREFETCH * tw; t += tw) {
            const long long g = t / splits, s = t - g * splits;
            const long long c0 = s * per_split * STEP;
            long long c1 = c0 + per_split * STEP;
            c1 = c1 < K ? c1 : K;
            if (lane < ROWS && c0 < c1) {
                long long u = g * UPW + lane / RPU;
                u = u < a.units ? u : a.units - 1;
                const long long row = unit_row<MODE>(a, u, lane % RPU);
                prefetch_l2(a.w + row * K + c0, (unsigned int)((c1 - c0) * 2));
            }
        }
    }
#endif
    // ... and the first step of its first task into registers: the weights are constant, so
    // their first round trip overlaps the previous kernel's tail (with PDL) or the norm below.
    // (The ring instead: its first RING - 1 steps, which may reach into the warp's next tasks.)
    constexpr bool ring_on = RING > 1 && V == 8;
    Raw<V> raw[UNROLL][ROWS];
    const unsigned short* wr[ROWS];
    RingCursor<MODE> cur;
    uint4* ring = 0;
    if constexpr (ring_on) {
#if RING > 1
        ring = reinterpret_cast<uint4*>(GEMV_DYN() + (XS ? NB * K : 0)) + (threadIdx.x >> 5) * (RING * ROWS * 32) + lane;
#endif
        cur.stage = 0;
        ring_task<MODE>(a, cur, gw, tasks, splits, per_split);
        #pragma unroll 1
        for (int j = 0; j < RING - 1; ++j) ring_produce<MODE>(a, cur, ring, tw, tasks, splits, per_split, lane);
    } else if (gw < tasks) {
        task_rows<MODE, V>(a, gw, splits, per_split, wr, raw, lane);
    }
    // TRIGGER: the next kernel may start (and issue its own first weight loads) while this one
    // still waits, i.e. while the kernel before this one runs: two kernels ahead instead of one.
    // Safe where every kernel reads before its wait only what no kernel of the step writes (the
    // weights); the attention kernel reads the sequence lengths before its wait, which holds only
    // if its predecessor, the q/k/v kernel, waited before it let it start: no TRIGGER there.
    // the epilogue's inputs no kernel in flight writes, for the warp's first task (a.early)
    EpiIn in_first;
    in_first.ok = false;
    if (a.early && gw < tasks) in_first = epi_inputs<MODE>(a, gw / splits, lane);
    constexpr bool trigger_early = TRIGGER && MODE != M_QKV;
    if (trigger_early) pdl_launch_dependents();
    pdl_wait();
    if (!trigger_early) pdl_launch_dependents();
#if XS
    // the activations into shared memory, the block together, once: every warp reads every piece
    // of its K range from there (was: each step's x load an L2 round trip after its weights came,
    // which the H200's ncu found behind 37% of the down projection's stall samples)
    GEMV_XS(xs);
    if (V == 8) {
        const long long n16 = (long long)NB * K / 8;
        for (long long i = threadIdx.x; i < n16; i += WARPS * 32)
            reinterpret_cast<uint4*>(xs)[i] = __ldg(reinterpret_cast<const uint4*>(a.x) + i);
    }
    __syncthreads();
    const unsigned short* const xsrc = xs;
#else
    const unsigned short* const xsrc = a.x;
#endif

    // 2. the norm's statistics (every warp computes its own: x is a few KB, in L1 / L2), eight
    //    steps of loads in flight at a time: a chain of one-at-a-time loads would cost a round
    //    trip per 256 columns
    float inv[NB];
    #pragma unroll
    for (int b = 0; b < NB; ++b) inv[b] = 1.0f;
    if (NORM) {
        #pragma unroll
        for (int b = 0; b < NB; ++b) {
            float ss = 0.0f;
            for (long long k0 = (long long)lane * V; k0 < K; k0 += 8 * STEP) {
                Vec<V> xs[8];
                #pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const long long k = k0 + i * STEP;
                    xs[i] = load_act<V>(xsrc + b * K + (k < K ? k : 0), k < K);
                }
                #pragma unroll
                for (int i = 0; i < 8; ++i)
                    #pragma unroll
                    for (int e = 0; e < V; ++e) ss = fmaf(xs[i].f[e], xs[i].f[e], ss);
            }
            ss = warp_sum(ss);
            inv[b] = rsqrtf(ss / (float)K + a.eps);
        }
    }
#if XS
    // the norm applied once, in place, by the block (each value is a bf16 already: exact), so the
    // multiply loop reads finished activations and no norm weights
    constexpr bool normed = NORM && V == 8;
    if (normed) {
        __syncthreads();                      // every warp's statistics read the raw values first
        const long long n16 = K / 8;
        #pragma unroll
        for (int b = 0; b < NB; ++b)
            for (long long i = threadIdx.x; i < n16; i += WARPS * 32) {
                uint4* p = reinterpret_cast<uint4*>(xs + b * K) + i;
                const Vec<8> xv = unpack_raw<8>(*p, 0);
                // (copying the norm weights into shared memory before the PDL wait instead gained
                // nothing: Llama-3.2-1B step 0.8439 against 0.8413 ms, H200, 2026-12-03, interleaved;
                // constant 4 KB rows the read-only path likely holds across replays already)
                const Vec<8> nwv = load_x<8>(a.nw + i * 8, true);
                unsigned short o[8];
                #pragma unroll
                for (int e = 0; e < 8; ++e) o[e] = to_bf(nwv.f[e] * rb(xv.f[e] * inv[b]));
                *p = make_uint4(o[0] | ((unsigned int)o[1] << 16), o[2] | ((unsigned int)o[3] << 16),
                                o[4] | ((unsigned int)o[5] << 16), o[6] | ((unsigned int)o[7] << 16));
            }
        __syncthreads();
    }
#else
    constexpr bool normed = false;
#endif

    float best_v = NEG_INF;   // LMHEAD: this lane's best logit (of activation row lane / UPW)
    long long best_i = 0x7fffffffffffffffLL;

    for (long long t = gw; t < tasks; t += tw) {
        const long long g = t / splits, s = t - g * splits;
        const long long k_begin = s * per_split * STEP;
        long long k_end = k_begin + per_split * STEP;
        k_end = k_end < K ? k_end : K;
        if (!ring_on && t != gw)  // (the first task's rows and first step were loaded before the wait)
            task_rows<MODE, V>(a, t, splits, per_split, wr, raw, lane);
        float acc[NB][ROWS];
        #pragma unroll
        for (int b = 0; b < NB; ++b)
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[b][r] = 0.0f;

        if constexpr (ring_on) {
            const long long n = (k_end - k_begin + STEP - 1) / STEP;
            int stage = cur.stage + 1 == RING ? 0 : cur.stage + 1;  // RING - 1 steps behind the producer
            #pragma unroll 1
            for (long long i = 0; i < n; ++i) {
                ring_produce<MODE>(a, cur, ring, tw, tasks, splits, per_split, lane);  // into the stage read last
                gemv_cp_wait<(RING > 1 ? RING - 1 : 0)>();                             // step i has landed
                const long long k = k_begin + i * STEP + (long long)lane * V;
                const bool ok = k < k_end;
                Raw<V> w[ROWS];
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    w[r].s = 0;
                    w[r].w = ok ? ring[(stage * ROWS + r) * 32] : make_uint4(0u, 0u, 0u, 0u);
                }
                stage = stage + 1 == RING ? 0 : stage + 1;
                step_fma<MODE, NORM, V, normed>(a, xsrc, k, ok, inv, w, acc);
            }
        } else {
        for (long long k0 = k_begin + (long long)lane * V; k0 < k_end; k0 += UNROLL * STEP) {
#if PIPE
            // the next UNROLL steps' loads go out before this batch's multiplies (a batch ahead:
            // twice the bytes in flight, and no gap between a warp's batches); past the range
            // they are predicated off
            Raw<V> next[UNROLL][ROWS];
            #pragma unroll
            for (int i = 0; i < UNROLL; ++i) {
                const long long k = k0 + (UNROLL + i) * STEP;
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) next[i][r] = load_w<V>(wr[r] + (k < k_end ? k : 0), k < k_end);
            }
#else
            if (k0 != k_begin + (long long)lane * V) {  // (a task's first step is loaded with its rows)
                #pragma unroll
                for (int i = 0; i < UNROLL; ++i) {       // every weight load of the step in flight
                    const long long k = k0 + i * STEP;
                    #pragma unroll
                    for (int r = 0; r < ROWS; ++r) raw[i][r] = load_w<V>(wr[r] + k, k < k_end);
                }
            }
#endif
            #pragma unroll
            for (int i = 0; i < UNROLL; ++i) {
                const long long k = k0 + i * STEP;
                step_fma<MODE, NORM, V, normed>(a, xsrc, k, k < k_end, inv, raw[i], acc);
            }
#if PIPE
            #pragma unroll
            for (int i = 0; i < UNROLL; ++i)
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) raw[i][r] = next[i][r];
#endif
        }
        }
        #pragma unroll
        for (int b = 0; b < NB; ++b)
            #pragma unroll
            for (int r = 0; r < ROWS; ++r) acc[b][r] = warp_sum(acc[b][r]);

        if (splits > 1) {  // write this range's sums; the group's last range finishes it
            #pragma unroll
            for (int b = 0; b < NB; ++b)
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    const long long u = g * UPW + r / RPU;
                    if (lane == ((b * ROWS + r) & 31) && u < a.units)
                        a.part[(s * NB + b) * rows_total + unit_row<MODE>(a, u, r % RPU)] = acc[b][r];
                }
            __threadfence();
            int last = 0;
            if (lane == 0) last = atomicAdd(a.counters + g, 1) == splits - 1;
            last = __shfl_sync(0xffffffffu, last, 0);
            if (!last) continue;
            __threadfence();
            #pragma unroll
            for (int b = 0; b < NB; ++b)
                #pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    long long u = g * UPW + r / RPU;
                    u = u < a.units ? u : a.units - 1;
                    const long long row = unit_row<MODE>(a, u, r % RPU);
                    float sum = 0.0f;
                    for (int q = 0; q < splits; ++q) sum += __ldcg(a.part + (q * NB + b) * rows_total + row);
                    acc[b][r] = sum;
                }
            if (lane == 0) a.counters[g] = 0;       // ready for the next call
        }
        // lane b * UPW + i finishes unit i of activation row b
        EpiIn in = in_first;
        in.ok = in.ok && t == gw;
        #pragma unroll
        for (int b = 0; b < NB; ++b)
            #pragma unroll
            for (int i = 0; i < UPW; ++i) {
                const long long u = g * UPW + i;
                if (lane == b * UPW + i && u < a.units)
                    epilogue<MODE>(a, b, u, acc[b][i * RPU], RPU == 2 ? acc[b][i * RPU + 1] : 0.0f, in, best_v, best_i);
            }
    }

    prefetch_share(a.pf0, a.pf0_bytes, gw, tw, lane);   // the next kernel's weights, while this one drains
    prefetch_share(a.pf1, a.pf1_bytes, gw, tw, lane);

    if (MODE == M_LMHEAD) {  // the greedy token: per warp, then the grid's last warp over all warps
        #pragma unroll
        for (int o = 1; o < UPW; o <<= 1) {          // lanes b * UPW .. b * UPW + UPW - 1 hold row b's
            const float ov = __shfl_xor_sync(0xffffffffu, best_v, o);
            const long long oi = __shfl_xor_sync(0xffffffffu, best_i, o);
            if (ov > best_v || (ov == best_v && oi < best_i)) { best_v = ov; best_i = oi; }
        }
        if (lane < NB * UPW && lane % UPW == 0) {
            a.amax_v[(lane / UPW) * tw + gw] = best_v;
            a.amax_i[(lane / UPW) * tw + gw] = (int)(best_i > 0x7fffffff ? 0x7fffffff : best_i);
        }
        __threadfence();
        int last = 0;
        if (lane == 0) last = atomicAdd(a.counters + groups, 1) == tw - 1;
        last = __shfl_sync(0xffffffffu, last, 0);
        if (last) {
            __threadfence();
            for (int b = 0; b < NB; ++b) {
                float bv = NEG_INF;
                int bi = 0x7fffffff;
                // eight warps' results per lane in flight at a time: one at a time, the grid's
                // 2112 warps cost 66 dependent L2 round trips at the end of the step
                long long w = lane;
                for (; w + 7 * 32 < tw; w += 8 * 32) {
                    float v8[8];
                    int i8[8];
                    #pragma unroll
                    for (int u = 0; u < 8; ++u) {
                        v8[u] = __ldcg(a.amax_v + b * tw + w + u * 32);
                        i8[u] = __ldcg(a.amax_i + b * tw + w + u * 32);
                    }
                    #pragma unroll
                    for (int u = 0; u < 8; ++u)
                        if (v8[u] > bv || (v8[u] == bv && i8[u] < bi)) { bv = v8[u]; bi = i8[u]; }
                }
                for (; w < tw; w += 32) {
                    const float v = __ldcg(a.amax_v + b * tw + w);
                    const int i = __ldcg(a.amax_i + b * tw + w);
                    if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
                }
                #pragma unroll
                for (int o = 16; o > 0; o >>= 1) {
                    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
                    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
                }
                if (lane == 0) a.token[b] = bi;
            }
            if (lane == 0) a.counters[groups] = 0;
        }
    }
}

// Which weight-load paths a kernel holds: VPATH 8 the 16-byte one only, 1 the any-alignment one
// only, 0 both (picked per call by the vec argument). A launcher that knows vec when it compiles
// builds one: the two bodies are inlined into one kernel, so NVRTC took about twice as long for
// both (q/k/v at batch 4: 3.2 s against 1.5 s for the 16-byte path alone, NVRTC 13.0 on the dev
// CPU), and a tuning run compiles a module per batch size and setting.
#ifndef VPATH
#define VPATH 0
#endif
template <int MODE, int NORM>
__device__ __forceinline__ void gemv_entry(const GemvArgs& a, int vec) {
    if constexpr (VPATH == 8) gemv_body<MODE, NORM, 8>(a);
    else if constexpr (VPATH == 1) gemv_body<MODE, NORM, 1>(a);
    else if (vec) gemv_body<MODE, NORM, 8>(a);
    else gemv_body<MODE, NORM, 1>(a);
}

__device__ __forceinline__ GemvArgs gemv_args() {
    GemvArgs a;
    a.x = 0; a.nw = 0; a.eps = 0.0f; a.w = 0; a.bias = 0; a.K = 0; a.units = 0; a.splits = 1;
    a.part = 0; a.counters = 0; a.y = 0; a.res = 0; a.mult = 1.0f; a.H = 0; a.KVH = 0; a.D = 0; a.L = 0;
    a.cos = 0; a.sin = 0; a.pos = 0; a.q = 0; a.kc = 0; a.vc = 0; a.amax_v = 0; a.amax_i = 0; a.token = 0;
    a.pf0 = 0; a.pf0_bytes = 0; a.pf1 = 0; a.pf1_bytes = 0; a.early = 0;
    return a;
}

// Copies a cache into the task's fresh output (functional form only; the engine appends in place).
extern "C" __global__ void __launch_bounds__(256)
copy_u16(const unsigned short* __restrict__ src, unsigned short* __restrict__ dst, long long n)
{
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const bool aligned = ((reinterpret_cast<unsigned long long>(src) | reinterpret_cast<unsigned long long>(dst)) & 15) == 0;
    const long long n8 = aligned ? n / 8 : 0;
    const uint4* s8 = reinterpret_cast<const uint4*>(src);
    uint4* d8 = reinterpret_cast<uint4*>(dst);
    for (long long i = i0; i < n8; i += stride) d8[i] = s8[i];
    for (long long i = n8 * 8 + i0; i < n; i += stride) dst[i] = src[i];
}
