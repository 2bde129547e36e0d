// ---- index division by a divisor fixed per launch (pointwise coordinates) -------------------
// t / d by a multiplier m and a shift s the host computes once per launch (codegen's
// rules_divider lines: s = ceil(log2 d), m = 2^32 (2^s - d) / d + 1, as PyTorch's IntDivider):
// a multiply-high, an add and a shift, where a division by a runtime int is about twenty
// instructions (nvcc 13, sm_90: the broadcast rotary kernel's two divisions were 96 of its 336).
// Exact for 0 <= t < 2^31 (int index math runs below 2^30 elements); long long divides plainly.
#ifndef RULES_INDEX_DIVIDER
#define RULES_INDEX_DIVIDER
__device__ __forceinline__ int rules_idiv(int t, int d, unsigned m, int s) {
    (void)d;
#if defined(__CUDA_ARCH__)
    const unsigned hi = __umulhi((unsigned)t, m);
#else
    const unsigned hi = (unsigned)(((unsigned long long)(unsigned)t * m) >> 32);
#endif
    return (int)((hi + (unsigned)t) >> s);
}
__device__ __forceinline__ long long rules_idiv(long long t, long long d, unsigned m, int s) {
    (void)m; (void)s;
    return t / d;
}
#endif
