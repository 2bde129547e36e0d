// ---- direct convolution ${NAME} (conv.cu) ----------------------------------------------------
// ${WHAT} over ${ND} spatial dims of a contiguous [N, C, *spatial] input, PyTorch's
// aten.convolution without cuDNN: a thread per COUT_PER_THREAD output channels (of one group)
// at POS_PER_THREAD consecutive positions along the last dim (grid-stride). Consecutive threads
// take consecutive positions of the same (n, channel block), so their x reads are coalesced
// and their weight reads are one broadcast; each x value loaded serves COUT_PER_THREAD
// channels and each weight POS_PER_THREAD positions. The window (kernel
// size, stride, padding, dilation, groups) is compiled in so the tap loops unroll; batch,
// channels per group and spatial extents (l* in, z* out; zq blocks of POS_PER_THREAD positions
// along the last) arrive at run time. fp32 accumulation,
// one rounding to the storage type at the store (bias added in fp32 first).
template <typename I>
__device__ __forceinline__ void ${NAME}_body(const ${T}* __restrict__ x, const ${T}* __restrict__ w,
                                             ${BIAS_PARAM}${T}* __restrict__ y, ${SIZES}I zq, I cin_g,
                                             I cout_g, I nblk, I lplane, I zplane, I n)
{
    const I step = (I)gridDim.x * (I)blockDim.x;
    const I gblk = (I)${GROUPS} * nblk;  // channel blocks per image
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < n; e += step) {
        I t_ = e;
${INDEX}
        const I sp = ${SP};  // the first output position (of POS_PER_THREAD) within its plane
        const I nb = t_ / gblk;
        const I cb = t_ - nb * gblk;
        const I g = cb / nblk;
        const I c0 = (cb - g * nblk) * (I)COUT_PER_THREAD;  // first channel (within group g) of this thread
        const ${T}* __restrict__ xg = x + (nb * (I)${GROUPS} + g) * cin_g * lplane;
        const ${T}* __restrict__ wg = w + ${W_BASE};
        // channel j's weight offset; past the group's last channel it reads the last (and stores nothing)
        I wo[COUT_PER_THREAD];
        float acc[POS_PER_THREAD][COUT_PER_THREAD];
#pragma unroll
        for (int j = 0; j < COUT_PER_THREAD; ++j) {
            wo[j] = ((I)j < cout_g - c0 ? (I)j : cout_g - c0 - 1) * (${W_J});
#pragma unroll
            for (int q = 0; q < POS_PER_THREAD; ++q) acc[q][j] = 0.0f;
        }
${SETUP}
        for (I ci = 0; ci < cin_g; ++ci) {
            const ${T}* __restrict__ xc = xg + ci * lplane;
            const ${T}* __restrict__ wc = wg + ci * (${W_CI});
${WINDOW}
        }
        ${T}* __restrict__ out = y + ((nb * (I)${GROUPS} + g) * cout_g + c0) * zplane + sp;
#pragma unroll
        for (int q = 0; q < POS_PER_THREAD; ++q) {
            if (${LAST_POS} + (I)q >= ${LAST_EXT}) break;
#pragma unroll
            for (int j = 0; j < COUT_PER_THREAD; ++j) {
                if ((I)j < cout_g - c0) out[(I)j * zplane + (I)q] = ${STORE};
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i32(const ${T}* __restrict__ x, const ${T}* __restrict__ w, ${BIAS_PARAM}${T}* __restrict__ y,
            ${SIZE_PARAMS}long long zq, long long cin_g, long long cout_g, long long nblk, long long lplane,
            long long zplane, long long n)
{
    ${NAME}_body<int>(x, w, ${BIAS_ARG}y, ${SIZE_ARGS_I32}(int)zq, (int)cin_g, (int)cout_g, (int)nblk,
                      (int)lplane, (int)zplane, (int)n);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_i64(const ${T}* __restrict__ x, const ${T}* __restrict__ w, ${BIAS_PARAM}${T}* __restrict__ y,
            ${SIZE_PARAMS}long long zq, long long cin_g, long long cout_g, long long nblk, long long lplane,
            long long zplane, long long n)
{
    ${NAME}_body<long long>(x, w, ${BIAS_ARG}y, ${SIZE_ARGS_I64}zq, cin_g, cout_g, nblk, lplane, zplane, n);
}
