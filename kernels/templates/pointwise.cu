// ---- pointwise region ${NAME} (pointwise.cu) ------------------------------------------------
// Each thread takes ITEMS groups of VEC consecutive elements per grid-stride step (one 16-byte
// access per operand when VEC * element size is 16), loads them all, then computes and stores;
// a scalar loop covers the tail and the case where pointers are not aligned (vec == 0).
// Index math is done in I: int when the tensor has fewer than 2^30 elements, else long long.
// Broadcast operands are addressed from the coordinates of the collapsed output dims.
template <typename I>
__device__ __forceinline__ void ${NAME}_body(${PARAMS}I n, ${SIZES}int vec)
{
    const I nv = vec ? n / VEC : (I)0;
    const I step = (I)gridDim.x * (BLOCK * ITEMS);
    for (I g0 = (I)blockIdx.x * (BLOCK * ITEMS) + (I)threadIdx.x; g0 < nv; g0 += step) {
${VEC_DECL}
        #pragma unroll
        for (int it = 0; it < ITEMS; ++it) {
            const I g = g0 + (I)it * BLOCK;
            if (g < nv) {
                const I e = g * VEC;
${VEC_LOAD}
            }
        }
        #pragma unroll
        for (int it = 0; it < ITEMS; ++it) {
            const I g = g0 + (I)it * BLOCK;
            if (g < nv) {
                const I e = g * VEC;
${VEC_COMPUTE}
            }
        }
    }
    for (I e = nv * VEC + (I)blockIdx.x * BLOCK + (I)threadIdx.x; e < n; e += (I)gridDim.x * BLOCK) {
${SCALAR}
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK, RULES_MINB)
${NAME}_i32(${PARAMS}long long n, ${SIZE_PARAMS}int vec)
{
    ${NAME}_body<int>(${ARGS}(int)n, ${SIZE_ARGS_I32}vec);
}

extern "C" __global__ void __launch_bounds__(BLOCK, RULES_MINB)
${NAME}_i64(${PARAMS}long long n, ${SIZE_PARAMS}int vec)
{
    ${NAME}_body<long long>(${ARGS}n, ${SIZE_ARGS_I64}vec);
}
