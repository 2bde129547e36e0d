// ---- pooling ${NAME} (pool.cu) --------------------------------------------------------------
// Max or average pooling over the ${ND} trailing (spatial) dims of a contiguous [outer, *spatial]
// input: a thread per output element (grid-stride, so consecutive threads write consecutive
// outputs), the window swept with its compile-time size, stride, padding and dilation so the
// loops unroll. Input sizes l*, output sizes z* and the plane l0 * l1 * ... arrive at run time.
// Max: padding is -inf, a NaN in the window wins (as PyTorch), and with return_indices the
// flattened spatial index of the max (the first in scan order; a window of -inf gives its first
// cell, a NaN its last NaN, as PyTorch); avg: fp32 sum, divided as PyTorch does (the window
// clipped to the padded input, or to the input without count_include_pad, or divisor_override).
template <typename I>
__device__ __forceinline__ void ${NAME}_body(const ${T}* __restrict__ src, ${T}* __restrict__ dst,
                                             ${IDX_PARAM}${SIZES}I plane, I n)
{
    const I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < n; e += step) {
        I t_ = e;
${INDEX}
        const ${T}* __restrict__ in = src + t_ * plane;
${WINDOW}
        dst[e] = ${STORE};${IDX_STORE}
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i32(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${IDX_PARAM}${SIZE_PARAMS}long long plane, long long n)
{
    ${NAME}_body<int>(src, dst, ${IDX_ARG}${SIZE_ARGS_I32}(int)plane, (int)n);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i64(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${IDX_PARAM}${SIZE_PARAMS}long long plane, long long n)
{
    ${NAME}_body<long long>(src, dst, ${IDX_ARG}${SIZE_ARGS_I64}plane, n);
}
