// ---- whole-tensor reduction ${NAME} (reduce_all.cu) ----------------------------------------
// Pass 1 (_partial): a grid-stride pass; each thread keeps VEC independent fp32 accumulators
// per reduction (one per vector lane), the block merges them with warp shuffles and writes
// one partial per block. Pass 2 (_final, one block): merges the partials in a fixed order
// (deterministic, no atomics) and computes the scalar results.
extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_partial(${PARAMS}float* __restrict__ part, long long n, int vec)
{
${DECL}
    const long long nv = vec ? n / VEC : 0;
    const long long stride = (long long)gridDim.x * BLOCK;
    for (long long g = (long long)blockIdx.x * BLOCK + threadIdx.x; g < nv; g += stride) {
        const long long e = g * VEC;
${VEC_BODY}
    }
    for (long long e = nv * VEC + (long long)blockIdx.x * BLOCK + threadIdx.x; e < n; e += stride) {
${SCALAR_BODY}
    }
${BLOCK_REDUCE}
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_final(const float* __restrict__ part, ${OUT_PARAMS}long long parts, long long n)
{
${FDECL}
    for (long long b = threadIdx.x; b < parts; b += BLOCK) {
${FLOAD}
    }
${FREDUCE}
    if (threadIdx.x == 0) {
${FINAL}
    }
}
