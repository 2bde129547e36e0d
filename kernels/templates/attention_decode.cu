// ---- decode attention ${NAME} (attention_decode.cu) -----------------------------------------
// One query per (batch, head) against L cached keys and values: softmax(q.k * scale) v, fp32.
// Block x = one (batch, head); block y = one range of keys (split-K; gridDim.y == 1: all).
// Warp w takes keys w, w + NW, ... KEYS at a time; lanes split head_dim in pieces of W
// elements (W = VEC when vec, else 1), the dot product is a warp sum, each warp keeps an
// online softmax state (max m, sum s) and its lanes' slice of the weighted sum of values.
// Warps merge through shared memory; with several key ranges, ${NAME}_combine merges the
// ranges' states. Requires D <= MAXD.
template <int W>
__device__ __forceinline__ void ${NAME}_body(const ${T}* __restrict__ q, const ${T}* __restrict__ k,
                                             const ${T}* __restrict__ v, ${TO}* __restrict__ out,
                                             float* __restrict__ part, float scale, long long L, long long D,
                                             long long chunk)
{
    constexpr int NW = BLOCK / 32;
    constexpr int P = (MAXD + 32 * W - 1) / (32 * W);
    __shared__ float sm_m[NW], sm_s[NW];
    __shared__ float sm_acc[NW][MAXD];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const long long bh = blockIdx.x;
    const long long k0 = (long long)blockIdx.y * chunk;
    const long long k1 = k0 + chunk < L ? k0 + chunk : L;
    const ${T}* __restrict__ kb = k + bh * L * D;
    const ${T}* __restrict__ vb = v + bh * L * D;
    float qv[P][W], acc[P][W];
    #pragma unroll
    for (int p = 0; p < P; ++p) {
        const long long d0 = ((long long)p * 32 + lane) * W;
        #pragma unroll
        for (int w = 0; w < W; ++w) { qv[p][w] = 0.0f; acc[p][w] = 0.0f; }
        if (d0 < D) ${LOAD}<W>(q + bh * D + d0, qv[p]);
    }
    float m = RULES_NEG_INF, s = 0.0f;
    for (long long l0 = k0 + warp; l0 < k1; l0 += (long long)NW * KEYS) {
        float dot[KEYS];
        #pragma unroll
        for (int t = 0; t < KEYS; ++t) {
            dot[t] = 0.0f;
            const long long l = l0 + (long long)t * NW;
            if (l < k1) {
                #pragma unroll
                for (int p = 0; p < P; ++p) {
                    const long long d0 = ((long long)p * 32 + lane) * W;
                    if (d0 < D) {
                        float kk[W];
                        ${LOAD}<W>(kb + l * D + d0, kk);
                        #pragma unroll
                        for (int w = 0; w < W; ++w) dot[t] = fmaf(qv[p][w], kk[w], dot[t]);
                    }
                }
            }
        }
        #pragma unroll
        for (int t = 0; t < KEYS; ++t) {
            const long long l = l0 + (long long)t * NW;
            if (l >= k1) break;
            const float sc = warp_sum(dot[t]) * scale;
            const float mn = rules_max(m, sc);
            const float corr = m == RULES_NEG_INF ? 0.0f : expf(m - mn);
            const float pr = mn == RULES_NEG_INF ? 0.0f : expf(sc - mn);
            s = s * corr + pr;
            m = mn;
            #pragma unroll
            for (int p = 0; p < P; ++p) {
                const long long d0 = ((long long)p * 32 + lane) * W;
                if (d0 < D) {
                    float vv[W];
                    ${LOAD}<W>(vb + l * D + d0, vv);
                    #pragma unroll
                    for (int w = 0; w < W; ++w) acc[p][w] = fmaf(pr, vv[w], acc[p][w] * corr);
                }
            }
        }
    }
    if (lane == 0) { sm_m[warp] = m; sm_s[warp] = s; }
    #pragma unroll
    for (int p = 0; p < P; ++p) {
        const long long d0 = ((long long)p * 32 + lane) * W;
        #pragma unroll
        for (int w = 0; w < W; ++w)
            if (d0 + w < D) sm_acc[warp][d0 + w] = acc[p][w];
    }
    __syncthreads();
    float M = RULES_NEG_INF;
    #pragma unroll
    for (int w = 0; w < NW; ++w) M = rules_max(M, sm_m[w]);
    float S = 0.0f;
    #pragma unroll
    for (int w = 0; w < NW; ++w) S += sm_m[w] == RULES_NEG_INF ? 0.0f : sm_s[w] * expf(sm_m[w] - M);
    for (long long d = threadIdx.x; d < D; d += BLOCK) {
        float o = 0.0f;
        #pragma unroll
        for (int w = 0; w < NW; ++w)
            if (sm_m[w] != RULES_NEG_INF) o = fmaf(sm_acc[w][d], expf(sm_m[w] - M), o);
        if (gridDim.y == 1) {
            out[bh * D + d] = ${NARROW_O};
        } else {
            part[(bh * gridDim.y + blockIdx.y) * (D + 2) + 2 + d] = o;
        }
    }
    if (gridDim.y > 1 && threadIdx.x == 0) {
        part[(bh * gridDim.y + blockIdx.y) * (D + 2)] = M;
        part[(bh * gridDim.y + blockIdx.y) * (D + 2) + 1] = S;
    }
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_main(const ${T}* __restrict__ q, const ${T}* __restrict__ k, const ${T}* __restrict__ v,
             ${TO}* __restrict__ out, float* __restrict__ part, float scale, long long L, long long D,
             long long chunk, int vec)
{
    if (vec) ${NAME}_body<VEC>(q, k, v, out, part, scale, L, D, chunk);
    else ${NAME}_body<1>(q, k, v, out, part, scale, L, D, chunk);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_combine(const float* __restrict__ part, ${TO}* __restrict__ out, long long splits, long long D)
{
    const long long bh = blockIdx.x;
    const float* __restrict__ pb = part + bh * splits * (D + 2);
    float M = RULES_NEG_INF;
    for (long long i = 0; i < splits; ++i) M = rules_max(M, pb[i * (D + 2)]);
    float S = 0.0f;
    for (long long i = 0; i < splits; ++i) {
        const float mi = pb[i * (D + 2)];
        if (mi != RULES_NEG_INF) S += pb[i * (D + 2) + 1] * expf(mi - M);
    }
    for (long long d = threadIdx.x; d < D; d += BLOCK) {
        float o = 0.0f;
        for (long long i = 0; i < splits; ++i) {
            const float mi = pb[i * (D + 2)];
            if (mi != RULES_NEG_INF) o = fmaf(pb[i * (D + 2) + 2 + d], expf(mi - M), o);
        }
        out[bh * D + d] = ${NARROW_O};
    }
}
