// ---- inclusive scan ${NAME}_${MODE} (scan.cu) -----------------------------------------------
// cumsum along rows of D elements, NT threads per row (a block, or a warp taking one of
// BLOCK / 32 rows). A chunk of NT * ITEMS * VEC elements at a time: each thread scans its
// ITEMS * VEC consecutive values, the thread totals are scanned with warp shuffles (and shared
// memory across warps), and a running carry joins the chunks. fp32 sums, one rounding per output.
#ifndef RULES_SCAN_HELPERS
#define RULES_SCAN_HELPERS
// Sum of v over the threads before this one (thread order); ``total`` gets the sum over all NT.
template <int NT>
__device__ __forceinline__ float scan_exclusive(float v, float& total) {
    const int lane = threadIdx.x & 31;
    float inc = v;
    #pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const float t = __shfl_up_sync(RULES_FULL_MASK, inc, o);
        if (lane >= o) inc += t;
    }
    float exc = __shfl_up_sync(RULES_FULL_MASK, inc, 1);
    if (lane == 0) exc = 0.0f;
    if constexpr (NT == 32) {
        total = __shfl_sync(RULES_FULL_MASK, inc, 31);
        return exc;
    } else {
        __shared__ float wsum[NT / 32];
        const int warp = threadIdx.x >> 5;
        __syncthreads();
        if (lane == 31) wsum[warp] = inc;
        __syncthreads();
        float winc = lane < NT / 32 ? wsum[lane] : 0.0f;
        #pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            const float t = __shfl_up_sync(RULES_FULL_MASK, winc, o);
            if (lane >= o) winc += t;
        }
        float wprev = __shfl_up_sync(RULES_FULL_MASK, winc, 1);
        if (lane == 0) wprev = 0.0f;
        total = __shfl_sync(RULES_FULL_MASK, winc, NT / 32 - 1);
        return __shfl_sync(RULES_FULL_MASK, wprev, warp) + exc;
    }
}
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_${MODE}(const ${TIN}* __restrict__ x, ${TOUT}* __restrict__ y, long long rows, long long D, int vec)
{
    constexpr int NT = ${NT};
    constexpr int PER = ITEMS * VEC;
    const int tid = ${TID};
    for (long long row = ${ROW0}; row < rows; row += ${RSTEP}) {
        const ${TIN}* __restrict__ xr = x + row * D;
        ${TOUT}* __restrict__ yr = y + row * D;
        float carry = 0.0f;
        for (long long c0 = 0; c0 < D; c0 += (long long)NT * PER) {
            const long long base = c0 + (long long)tid * PER;
            float v[PER];
            #pragma unroll
            for (int it = 0; it < ITEMS; ++it) {
                const long long b = base + it * VEC;
                if (vec && b + VEC <= D) ${LOAD}<VEC>(xr + b, v + it * VEC);
                else RULES_LANES v[it * VEC + u] = b + u < D ? ${WIDEN} : 0.0f;
            }
            #pragma unroll
            for (int i = 1; i < PER; ++i) v[i] += v[i - 1];
            float total;
            const float add = carry + scan_exclusive<NT>(v[PER - 1], total);
            #pragma unroll
            for (int i = 0; i < PER; ++i) v[i] += add;
            #pragma unroll
            for (int it = 0; it < ITEMS; ++it) {
                const long long b = base + it * VEC;
                if (vec && b + VEC <= D) ${STORE}<VEC>(yr + b, v + it * VEC);
                else RULES_LANES if (b + u < D) yr[b + u] = ${NARROW};
            }
            carry += total;
        }
    }
}
