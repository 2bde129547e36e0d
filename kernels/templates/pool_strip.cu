// ---- pooling ${NAME}, strips (pool_strip.cu) ---------------------------------------------------
// Max or average pooling over the ${ND} trailing (spatial) dims of a contiguous [outer, *spatial]
// input, a thread per strip of ROWS outputs stacked along the second-to-last spatial dim
// (grid-stride; consecutive threads take consecutive columns). The window is separable: each
// input row the strip needs is reduced over the last dim's window once and folded into every
// output of the strip whose window holds it, so a row is read once per strip. Padding is -inf
// (max) or skipped (avg, divided as PyTorch does); a NaN in a window wins, as PyTorch.
template <typename I>
__device__ __forceinline__ void ${NAME}_body(const ${T}* __restrict__ src, ${T}* __restrict__ dst,
                                             ${SIZES}I plane, I n)
{
    const I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < n; e += step) {
        I t_ = e;
${BODY}
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i32(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${SIZE_PARAMS}long long plane, long long n)
{
    ${NAME}_body<int>(src, dst, ${SIZE_ARGS_I32}(int)plane, (int)n);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i64(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${SIZE_PARAMS}long long plane, long long n)
{
    ${NAME}_body<long long>(src, dst, ${SIZE_ARGS_I64}plane, n);
}
