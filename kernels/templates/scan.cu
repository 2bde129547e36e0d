// ---- scan ${NAME} (scan.cu): cumsum / cumprod, inclusive or exclusive, forward or reversed --
// The data is [outer, L, inner] (the scan runs along L); the output is [rows, Lo, inner] with
// rows <= outer (a leading slice) and Lo = L, or L + 1 for an exclusive scan that also writes
// the total (cumsum of a zero-padded input). Position j of the scan reads x[L - 1 - j] and
// writes y[Lo - 1 - j] when reversed. OP 0 is a sum, 1 a product; fp32 arithmetic, one
// rounding per output. flags: 1 vector loads, 2 vector stores, 4 reversed, 8 exclusive.
//
// inner == 1 (the last dim): a block (${NAME}_block) or a warp (${NAME}_warp) per row
// segment. A chunk of NT * ITEMS * VEC elements at a time: each thread scans its ITEMS * VEC
// consecutive values (staged through shared memory when STAGE is on, see below), the thread totals are scanned with warp shuffles (and shared memory
// across warps) and a running carry joins the chunks. A row too long for one block is split
// into ``nseg`` segments (a two-level scan, deterministic): ${NAME}_segtot writes each
// segment's total, and each segment's block starts from the combination of the totals before
// it (a block reduction, in a fixed order).
//
// inner > 1 (a dim that is not the last): ${NAME}_cols, one thread per VEC consecutive columns
// walking down L (coalesced across the columns, 16-byte accesses where inner allows); L is
// cut into ``nchunk`` chunks when there are too few columns to fill the GPU, with the chunk
// totals from ${NAME}_coltot (again deterministic).
#ifndef RULES_SCAN_HELPERS
#define RULES_SCAN_HELPERS
template <int OP> __device__ __forceinline__ float scan_id() { return OP == 0 ? 0.0f : 1.0f; }
template <int OP> __device__ __forceinline__ float scan_op(float a, float b) { return OP == 0 ? a + b : a * b; }

template <int OP>
__device__ __forceinline__ float warp_combine(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = scan_op<OP>(v, __shfl_xor_sync(RULES_FULL_MASK, v, o));
    return v;
}

// Combination of v over the NT threads (a block, or one warp when NT == 32); every thread gets it.
template <int NT, int OP>
__device__ __forceinline__ float block_combine(float v) {
    v = warp_combine<OP>(v);
    if constexpr (NT > 32) {
        __shared__ float cpart[NT / 32];
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 0) cpart[warp] = v;
        __syncthreads();
        v = warp_combine<OP>(lane < NT / 32 ? cpart[lane] : scan_id<OP>());
    }
    return v;
}

// Combination of v over the threads before this one (thread order); ``total`` over all NT.
template <int NT, int OP>
__device__ __forceinline__ float scan_exclusive(float v, float& total) {
    const int lane = threadIdx.x & 31;
    float inc = v;
    #pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const float t = __shfl_up_sync(RULES_FULL_MASK, inc, o);
        if (lane >= o) inc = scan_op<OP>(t, inc);
    }
    float exc = __shfl_up_sync(RULES_FULL_MASK, inc, 1);
    if (lane == 0) exc = scan_id<OP>();
    if constexpr (NT == 32) {
        total = __shfl_sync(RULES_FULL_MASK, inc, 31);
        return exc;
    } else {
        __shared__ float wsum[NT / 32];
        const int warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 31) wsum[warp] = inc;
        __syncthreads();
        float winc = lane < NT / 32 ? wsum[lane] : scan_id<OP>();
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const float t = __shfl_up_sync(RULES_FULL_MASK, winc, o);
            if (lane >= o) winc = scan_op<OP>(t, winc);
        }
        float wprev = __shfl_up_sync(RULES_FULL_MASK, winc, 1);
        if (lane == 0) wprev = scan_id<OP>();
        total = __shfl_sync(RULES_FULL_MASK, winc, NT / 32 - 1);
        return scan_op<OP>(__shfl_sync(RULES_FULL_MASK, wprev, warp), exc);
    }
}
#endif

// Load logical positions b .. b + VEC of a row of L (reversed: read from the row's end).
#define ${NAME}_LOAD(xr, b, L, flags, dst)                                                         \
    do {                                                                                          \
        if (((flags) & 1) && (b) + VEC <= (L)) {                                                  \
            if ((flags) & 4) {                                                                    \
                float t_[VEC];                                                                    \
                ${LOAD}<VEC>((xr) + ((L) - (b) - VEC), t_);                                       \
                RULES_LANES (dst)[u] = t_[VEC - 1 - u];                                           \
            } else {                                                                              \
                ${LOAD}<VEC>((xr) + (b), (dst));                                                  \
            }                                                                                     \
        } else {                                                                                  \
            RULES_LANES {                                                                         \
                const long long j_ = (b) + u;                                                     \
                const long long p_ = ((flags) & 4) ? (L) - 1 - j_ : j_;                           \
                (dst)[u] = j_ < (L) ? ${WIDEN_P} : scan_id<${OP}>();                              \
            }                                                                                     \
        }                                                                                         \
    } while (0)

// Scans a thread's PER values in place (inclusive, or exclusive: each value becomes the
// combination of those before it) across the NT threads in thread order, starting from carry;
// total: the combination of all NT * PER values.
template <int NT>
__device__ __forceinline__ void ${NAME}_scan_chunk(float* v, float carry, bool excl, float& total)
{
    constexpr int PER = ITEMS * VEC;
    float prev = scan_id<${OP}>();  // exclusive: the value before position i of this thread
    #pragma unroll
    for (int i = 0; i < PER; ++i) {
        const float inc = scan_op<${OP}>(prev, v[i]);
        v[i] = excl ? prev : inc;
        prev = inc;
    }
    const float add = scan_op<${OP}>(carry, scan_exclusive<NT, ${OP}>(prev, total));
    #pragma unroll
    for (int i = 0; i < PER; ++i) v[i] = scan_op<${OP}>(add, v[i]);
}

// Staging (STAGE 1, up to 32 KB of shared memory a block): a chunk goes through shared memory
// so that global memory is read and written in aligned VEC-wide vectors striped across the
// threads (coalesced, whatever the row's alignment: the exclusive scan with its total writes
// rows of L + 1, a scan over an odd L reads unaligned rows), while each thread still scans
// PER consecutive values. Without it each thread reads and writes its own PER consecutive
// values in place (PER * 4 bytes apart across a warp), in vectors only when every row is aligned.
#define ${NAME}_STAGED (STAGE && BLOCK * ITEMS * VEC <= 8192)
#ifndef PREFETCH
#define PREFETCH 0  // the in-place path loads the next chunk before scanning this one (searched)
#endif

template <int NT>
__device__ __forceinline__ void ${NAME}_sync() {
    if constexpr (NT > 32) __syncthreads(); else __syncwarp();
}

// Addresses [lo, hi) of a chunk window [a0, a0 + C) of a row (C = NT * ITEMS * VEC), between
// global memory and the staging buffer: buffer index A - a0, or a0 + C - 1 - A reversed (so
// that the buffer is always in scan order). Aligned vectors where a whole group lies inside,
// single elements at the window's edges.
template <int NT>
__device__ __forceinline__ void ${NAME}_stage_in(const ${TIN}* __restrict__ xr, float* buf, long long a0,
                                                 long long lo, long long hi, bool rev, int tid)
{
    constexpr int C = NT * ITEMS * VEC;
    const long long mis = (long long)(((unsigned long long)xr / sizeof(${TIN})) % VEC);
    const long long first = a0 + (VEC - ((mis + a0) % VEC + VEC) % VEC) % VEC;  // first aligned address
    for (int g = tid - 1; g < C / VEC; g += NT) {
        const long long A = first + (long long)g * VEC;
        if (g >= 0 && A >= lo && A + VEC <= hi) {
            float t[VEC];
            ${LOAD}<VEC>(xr + A, t);
            RULES_LANES buf[rev ? a0 + C - 1 - (A + u) : A + u - a0] = t[u];
        } else {
            RULES_LANES {
                const long long p_ = A + u;
                if (p_ >= lo && p_ < hi) buf[rev ? a0 + C - 1 - p_ : p_ - a0] = ${WIDEN_P};
            }
        }
    }
}

template <int NT>
__device__ __forceinline__ void ${NAME}_stage_out(${TOUT}* __restrict__ yr, const float* buf, long long a0,
                                                  long long lo, long long hi, bool rev, int tid)
{
    constexpr int C = NT * ITEMS * VEC;
    const long long mis = (long long)(((unsigned long long)yr / sizeof(${TOUT})) % VEC);
    const long long first = a0 + (VEC - ((mis + a0) % VEC + VEC) % VEC) % VEC;
    for (int g = tid - 1; g < C / VEC; g += NT) {
        const long long A = first + (long long)g * VEC;
        float w[VEC];
        RULES_LANES {
            const long long p_ = A + u;
            w[u] = (p_ >= lo && p_ < hi) ? buf[rev ? a0 + C - 1 - p_ : p_ - a0] : 0.0f;
        }
        if (g >= 0 && A >= lo && A + VEC <= hi) {
            ${STORE}<VEC>(yr + A, w);
        } else {
            RULES_LANES if (A + u >= lo && A + u < hi) yr[A + u] = ${NARROW_W};
        }
    }
}

template <int NT>
__device__ __forceinline__ void ${NAME}_segment_staged(const ${TIN}* __restrict__ xr, ${TOUT}* __restrict__ yr,
                                                       long long L, long long Lo, long long c_begin,
                                                       long long c_end, float carry, int flags, int tid,
                                                       float* buf)
{
    constexpr int PER = ITEMS * VEC, C = NT * PER;
    const bool excl = (flags & 8) != 0, rev = (flags & 4) != 0;
    for (long long c0 = c_begin; c0 < c_end; c0 += C) {
        const long long jin = c0 + C < L ? c0 + C : L;  // positions [c0, jin) are in x
        if (jin > c0)
            ${NAME}_stage_in<NT>(xr, buf, rev ? L - c0 - C : c0, rev ? L - jin : c0, rev ? L - c0 : jin, rev, tid);
        ${NAME}_sync<NT>();
        float v[PER];
        #pragma unroll
        for (int i = 0; i < PER; ++i)
            v[i] = c0 + tid * PER + i < L ? buf[tid * PER + i] : scan_id<${OP}>();
        float total;
        ${NAME}_scan_chunk<NT>(v, carry, excl, total);
        ${NAME}_sync<NT>();  // every thread has read its values
        #pragma unroll
        for (int i = 0; i < PER; ++i) buf[tid * PER + i] = v[i];
        ${NAME}_sync<NT>();
        long long jout = c0 + C < c_end ? c0 + C : c_end;  // positions [c0, jout) are written
        jout = jout < Lo ? jout : Lo;
        if (jout > c0)
            ${NAME}_stage_out<NT>(yr, buf, rev ? Lo - c0 - C : c0, rev ? Lo - jout : c0, rev ? Lo - c0 : jout, rev, tid);
        ${NAME}_sync<NT>();  // the buffer is free for the next chunk
        carry = scan_op<${OP}>(carry, total);
    }
}

template <int NT>
__device__ __forceinline__ void ${NAME}_segment(const ${TIN}* __restrict__ xr, ${TOUT}* __restrict__ yr, long long L,
                                                long long Lo, long long c_begin, long long c_end, float carry,
                                                int flags, int tid)
{
    constexpr int PER = ITEMS * VEC;
    constexpr long long C = (long long)NT * PER;
    const bool excl = (flags & 8) != 0, rev = (flags & 4) != 0;
    float ahead[PER];  // PREFETCH 1: the next chunk's values, loaded before this chunk's scan
    for (long long c0 = c_begin; c0 < c_end; c0 += C) {
        const long long base = c0 + (long long)tid * PER;
        float v[PER];
        if (PREFETCH && c0 != c_begin) {
            #pragma unroll
            for (int i = 0; i < PER; ++i) v[i] = ahead[i];
        } else {
            #pragma unroll
            for (int it = 0; it < ITEMS; ++it) {
                const long long b = base + it * VEC;
                ${NAME}_LOAD(xr, b, L, flags, v + it * VEC);
            }
        }
        if (PREFETCH && c0 + C < c_end) {  // in flight while this chunk is scanned and stored
            #pragma unroll
            for (int it = 0; it < ITEMS; ++it) {
                const long long b = base + C + it * VEC;
                ${NAME}_LOAD(xr, b, L, flags, ahead + it * VEC);
            }
        }
        float total;
        ${NAME}_scan_chunk<NT>(v, carry, excl, total);
        #pragma unroll
        for (int it = 0; it < ITEMS; ++it) {
            const long long b = base + it * VEC;
            float* w = v + it * VEC;
            if ((flags & 2) && b + VEC <= c_end && b + VEC <= Lo) {
                if (rev) {
                    float t[VEC];
                    RULES_LANES t[u] = w[VEC - 1 - u];
                    ${STORE}<VEC>(yr + (Lo - b - VEC), t);
                } else {
                    ${STORE}<VEC>(yr + b, w);
                }
            } else {
                RULES_LANES {
                    const long long j = b + u;
                    if (j < c_end && j < Lo) yr[rev ? Lo - 1 - j : j] = ${NARROW_W};
                }
            }
        }
        carry = scan_op<${OP}>(carry, total);
    }
}

// Row segments of ``seg`` positions: segment s is row s / nseg, positions [k * seg, (k + 1) * seg).
extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_block(const ${TIN}* __restrict__ x, ${TOUT}* __restrict__ y, const float* __restrict__ segtot,
              long long rows, long long L, long long Lo, long long nseg, long long seg, int flags)
{
    const long long n = rows * nseg;
    const long long Lmax = L > Lo ? L : Lo;
    for (long long s = blockIdx.x; s < n; s += gridDim.x) {
        const long long row = s / nseg, k = s - row * nseg;
        float carry = scan_id<${OP}>();
        if (k > 0) {  // the totals of the segments before this one, in a fixed order
            float c = scan_id<${OP}>();
            for (long long q = threadIdx.x; q < k; q += BLOCK) c = scan_op<${OP}>(c, segtot[row * nseg + q]);
            carry = block_combine<BLOCK, ${OP}>(c);
        }
        const long long end = (k + 1) * seg < Lmax ? (k + 1) * seg : Lmax;
#if ${NAME}_STAGED
        __shared__ float stage[BLOCK * ITEMS * VEC];
        ${NAME}_segment_staged<BLOCK>(x + row * L, y + row * Lo, L, Lo, k * seg, end, carry, flags,
                                      (int)threadIdx.x, stage);
#else
        ${NAME}_segment<BLOCK>(x + row * L, y + row * Lo, L, Lo, k * seg, end, carry, flags, (int)threadIdx.x);
#endif
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_warp(const ${TIN}* __restrict__ x, ${TOUT}* __restrict__ y, long long rows, long long L, long long Lo,
             int flags)
{
    const long long Lmax = L > Lo ? L : Lo;
    for (long long row = (long long)blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5); row < rows;
         row += (long long)gridDim.x * (BLOCK / 32)) {
#if ${NAME}_STAGED
        __shared__ float stage[BLOCK * ITEMS * VEC];
        ${NAME}_segment_staged<32>(x + row * L, y + row * Lo, L, Lo, 0, Lmax, scan_id<${OP}>(), flags,
                                   (int)(threadIdx.x & 31), stage + (threadIdx.x >> 5) * (32 * ITEMS * VEC));
#else
        ${NAME}_segment<32>(x + row * L, y + row * Lo, L, Lo, 0, Lmax, scan_id<${OP}>(), flags,
                            (int)(threadIdx.x & 31));
#endif
    }
}

// Total of each row segment's input (the first pass of a split row).
extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_segtot(const ${TIN}* __restrict__ x, float* __restrict__ segtot, long long rows, long long L,
               long long nseg, long long seg, int flags)
{
    const long long n = rows * nseg;
    for (long long s = blockIdx.x; s < n; s += gridDim.x) {
        const long long row = s / nseg, k = s - row * nseg;
        const ${TIN}* __restrict__ xr = x + row * L;
        const long long end = (k + 1) * seg < L ? (k + 1) * seg : L;
        float acc[VEC];
        RULES_LANES acc[u] = scan_id<${OP}>();
        for (long long b = k * seg + (long long)threadIdx.x * VEC; b < end; b += (long long)BLOCK * VEC) {
            float v[VEC];
            if ((flags & 1) && b + VEC <= end) {
                ${NAME}_LOAD(xr, b, L, flags, v);
            } else {
                RULES_LANES {
                    const long long j_ = b + u;
                    const long long p_ = (flags & 4) ? L - 1 - j_ : j_;
                    v[u] = j_ < end ? ${WIDEN_P} : scan_id<${OP}>();
                }
            }
            RULES_LANES acc[u] = scan_op<${OP}>(acc[u], v[u]);
        }
        for (int u = 1; u < VEC; ++u) acc[0] = scan_op<${OP}>(acc[0], acc[u]);
        const float t = block_combine<BLOCK, ${OP}>(acc[0]);
        if (threadIdx.x == 0) segtot[s] = t;
    }
}

// Columns: thread g takes VEC consecutive columns of one outer index and one chunk of L.
// g = (chunk * outer + o) * ngrp + i / VEC, where ngrp = ceil(inner / VEC).
extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_coltot(const ${TIN}* __restrict__ x, float* __restrict__ coltot, long long outer, long long L,
               long long inner, long long nchunk, long long chunk, int flags)
{
    const long long ngrp = (inner + VEC - 1) / VEC;
    const long long n = nchunk * outer * ngrp;
    const bool rev = (flags & 4) != 0;
    for (long long g = (long long)blockIdx.x * BLOCK + threadIdx.x; g < n; g += (long long)gridDim.x * BLOCK) {
        const long long c = g / (outer * ngrp), rest = g - c * outer * ngrp;
        const long long o = rest / ngrp, i0 = (rest - o * ngrp) * VEC;
        const ${TIN}* __restrict__ xo = x + o * L * inner + i0;
        const long long end = (c + 1) * chunk < L ? (c + 1) * chunk : L;
        float acc[VEC];
        RULES_LANES acc[u] = scan_id<${OP}>();
        for (long long j = c * chunk; j < end; ++j) {
            const ${TIN}* __restrict__ xr = xo + (rev ? L - 1 - j : j) * inner;
            float v[VEC];
            if (flags & 1) {
                ${LOAD}<VEC>(xr, v);
            } else {
                RULES_LANES v[u] = i0 + u < inner ? ${WIDEN_C} : scan_id<${OP}>();
            }
            RULES_LANES acc[u] = scan_op<${OP}>(acc[u], v[u]);
        }
        RULES_LANES if (i0 + u < inner) coltot[(c * outer + o) * inner + i0 + u] = acc[u];
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_cols(const ${TIN}* __restrict__ x, ${TOUT}* __restrict__ y, const float* __restrict__ coltot,
             long long rows, long long outer, long long L, long long Lo, long long inner, long long nchunk,
             long long chunk, int flags)
{
    const long long ngrp = (inner + VEC - 1) / VEC;
    const long long n = nchunk * rows * ngrp;
    const bool rev = (flags & 4) != 0, excl = (flags & 8) != 0;
    const long long Lmax = L > Lo ? L : Lo;
    for (long long g = (long long)blockIdx.x * BLOCK + threadIdx.x; g < n; g += (long long)gridDim.x * BLOCK) {
        const long long c = g / (rows * ngrp), rest = g - c * rows * ngrp;
        const long long o = rest / ngrp, i0 = (rest - o * ngrp) * VEC;
        const ${TIN}* __restrict__ xo = x + o * L * inner + i0;
        ${TOUT}* __restrict__ yo = y + o * Lo * inner + i0;
        float carry[VEC];
        RULES_LANES carry[u] = scan_id<${OP}>();
        for (long long q = 0; q < c; ++q) {  // totals of the chunks above, in order
            RULES_LANES if (i0 + u < inner) carry[u] = scan_op<${OP}>(carry[u], coltot[(q * rows + o) * inner + i0 + u]);
        }
        const long long end = (c + 1) * chunk < Lmax ? (c + 1) * chunk : Lmax;
        #pragma unroll 4
        for (long long j = c * chunk; j < end; ++j) {
            float v[VEC];
            if (j < L) {
                const ${TIN}* __restrict__ xr = xo + (rev ? L - 1 - j : j) * inner;
                if (flags & 1) {
                    ${LOAD}<VEC>(xr, v);
                } else {
                    RULES_LANES v[u] = i0 + u < inner ? ${WIDEN_C} : scan_id<${OP}>();
                }
            } else {
                RULES_LANES v[u] = scan_id<${OP}>();
            }
            float w[VEC];
            RULES_LANES {
                const float inc = scan_op<${OP}>(carry[u], v[u]);
                w[u] = excl ? carry[u] : inc;
                carry[u] = inc;
            }
            ${TOUT}* __restrict__ yr = yo + (rev ? Lo - 1 - j : j) * inner;
            if (flags & 2) {
                ${STORE}<VEC>(yr, w);
            } else {
                RULES_LANES if (i0 + u < inner) yr[u] = ${NARROW_W};
            }
        }
    }
}
#undef ${NAME}_LOAD
#undef ${NAME}_STAGED
