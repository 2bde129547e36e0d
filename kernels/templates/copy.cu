// ---- strided copy ${NAME} (copy.cu) ---------------------------------------------------------
// Materializes a view (transpose, permute, a slice with a step or an offset, a select) as a
// contiguous tensor, for kernels that read every operand in its own memory order: a thread per
// output element (grid-stride), its source found from the output coordinates and the view's
// strides in elements (the pointer already includes the view's storage offset). Elements are
// moved as stored (no conversion). Writes are coalesced; a transpose's reads are not (L2).
template <typename I>
__device__ __forceinline__ void ${NAME}_body(const ${T}* __restrict__ src, ${T}* __restrict__ dst,
                                             ${SIZES}I n)
{
    const I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < n; e += step) {
        I t_ = e;
        I off = 0;
${INDEX}
        dst[e] = src[off];
    }
}

extern "C" __global__ void __launch_bounds__(${BLOCK})
${NAME}_i32(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${SIZE_PARAMS}long long n)
{
    ${NAME}_body<int>(src, dst, ${SIZE_ARGS_I32}(int)n);
}

extern "C" __global__ void __launch_bounds__(${BLOCK})
${NAME}_i64(const ${T}* __restrict__ src, ${T}* __restrict__ dst, ${SIZE_PARAMS}long long n)
{
    ${NAME}_body<long long>(src, dst, ${SIZE_ARGS_I64}n);
}
