// ---- GEMM ${NAME} (gemm.cu) ----------------------------------------------------------------
// C[z, m, n] = sum_k A[z, m, k] * B[z, k, n] (z: the batch), SIMT: fp32 products and fp32
// accumulation (no tensor cores, no TF32), so fp32 results match PyTorch's fp32 GEMM to about
// 1e-6 relative. A and B are read through their runtime strides in elements (a transposed or
// broadcast operand costs no copy); C is contiguous [batch, M, N] in the output dtype.
//
// A block computes a GEMM_BM x GEMM_BN tile of C with (BM / TM) x (BN / TN) threads, each a
// TM x TN register micro-tile. The k dim advances GEMM_BK at a time through shared memory,
// double-buffered: the next tile's global loads are issued into registers before the current
// tile's products, and stored to the other buffer after them (one barrier per k-step). Both
// tiles are stored k-major (A transposed), so a thread's TM + TN operands for one k are
// consecutive floats (16-byte shared loads). Global loads are 16-byte vectors along the
// operand's contiguous dim where the host found it contiguous and aligned (host modes 1: along
// k, 3: along m / n), else scalar (0: k, 2: m / n consecutive across threads), each pair of
// modes its own kernel (${NAME}_kk, _kx, ..., _ss); elements outside M, N or K read as 0 and
// are never stored. The host passes sizes and strides as read from the tensors at run time.
//
// Split-K (GEMM_SPLITK > 1, the host picks the count): blockIdx.y also selects a slice of k,
// each slice writes fp32 partial sums to a workspace, and ${NAME}_sum adds the slices in a
// fixed order (deterministic, no atomics) and rounds once.
#ifndef GEMM_BM
#define GEMM_BM 128
#endif
#ifndef GEMM_BN
#define GEMM_BN 128
#endif
#ifndef GEMM_BK
#define GEMM_BK 8
#endif
#ifndef GEMM_TM
#define GEMM_TM 8
#endif
#ifndef GEMM_TN
#define GEMM_TN 8
#endif
#ifndef GEMM_SPLITK
#define GEMM_SPLITK 1
#endif
#define ${NAME}_NT ((GEMM_BM / GEMM_TM) * (GEMM_BN / GEMM_TN))
// Kernels with vector loads: at most 128 registers a thread (the 128 x 128 / 8 x 8 tile needs
// about that many; a few more would halve occupancy, a few spilled are cheaper).
#define ${NAME}_MINB (${NAME}_NT <= 512 ? 512 / ${NAME}_NT : 1)
static_assert(GEMM_BM % GEMM_TM == 0 && GEMM_BN % GEMM_TN == 0, "GEMM_TM / GEMM_TN must divide GEMM_BM / GEMM_BN");
static_assert(${NAME}_NT <= 1024, "GEMM tile: at most 1024 threads");

// One operand tile, GEMM_BK x X elements (X = BM for A, BN for B), global <-> registers <->
// shared (k-major: s[k * (X + 4) + x]). Element (x, k) of the operand is p[x * sx + k * sk].
// VX: vectors along x (else along k); SCALAR: one element per access, along x where ax (a
// runtime choice: the scalar path is the rare one, so it is not worth its own instantiation).
template <typename T, int X, bool SCALAR, bool VX>
struct ${NAME}_Tile {
    static constexpr int V = SCALAR ? 1 : ${V};  // elements per access
    static_assert((VX ? X : GEMM_BK) % V == 0, "a vector must divide the tile");
    static constexpr int COUNT = GEMM_BK * X / V;  // accesses per tile
    static constexpr int PER = (COUNT + ${NAME}_NT - 1) / ${NAME}_NT;  // per thread

    // (x, k) in the tile of access v: consecutive accesses run along x or along k
    static __device__ __forceinline__ void place(int v, bool ax, int& x, int& k) {
        const bool along_x = SCALAR ? ax : VX;
        const int n = (along_x ? X : GEMM_BK) / V;
        const int a = (v % n) * V, b = v / n;
        x = along_x ? a : b;
        k = along_x ? b : a;
    }

    // Per thread and access: the element at (x, k0 + k) of the current tile (k0 advances a
    // tile at a time, so each load is one pointer increment), k, and how much of the access's
    // x run lies inside the operand (clamped: >= V means all of it).
    const T* ptr[PER];
    int kin[PER], xr[PER];
    long long step;

    // At the tile (x0, kbeg); xn: the operand's extent along x.
    __device__ __forceinline__ void init(const T* __restrict__ p, long long sx, long long sk, long long x0,
                                         long long kbeg, long long xn, bool ax) {
        step = (long long)GEMM_BK * sk;
        #pragma unroll
        for (int i = 0; i < PER; ++i) {
            int xi, ki;
            place((int)threadIdx.x + i * ${NAME}_NT, ax, xi, ki);
            const long long rest = xn - (x0 + xi);
            xr[i] = rest < V ? (int)(rest > 0 ? rest : 0) : V;
            kin[i] = ki;
            ptr[i] = p + (x0 + xi) * sx + (kbeg + ki) * sk;
        }
    }

    // Registers <- the current tile, of which the first krem k (clamped to BK) lie inside the
    // operand; elements outside read as 0. A partial vector goes element by element (its
    // contiguous dim has stride 1).
    __device__ __forceinline__ void load(float* r, int krem) const {
        #pragma unroll
        for (int i = 0; i < PER; ++i) {
            if (COUNT % ${NAME}_NT != 0 && (int)threadIdx.x + i * ${NAME}_NT >= COUNT) break;
            float* const out = r + i * V;
            if constexpr (V > 1) {
                if (VX ? (kin[i] < krem && xr[i] >= V) : (xr[i] > 0 && kin[i] + V <= krem)) {
                    ${LOADV}(ptr[i], out);
                    continue;
                }
            }
            #pragma unroll
            for (int u = 0; u < V; ++u) {
                const bool in = VX ? (u < xr[i] && kin[i] < krem) : (xr[i] > 0 && kin[i] + u < krem);
                out[u] = in ? ${WIDEN}(ptr[i][u]) : 0.0f;
            }
        }
    }

    __device__ __forceinline__ void advance() {
        #pragma unroll
        for (int i = 0; i < PER; ++i) ptr[i] += step;
    }

    // Shared (k-major) <- registers.
    static __device__ __forceinline__ void store(float* s, const float* r, bool ax) {
        #pragma unroll
        for (int i = 0; i < PER; ++i) {
            const int v = (int)threadIdx.x + i * ${NAME}_NT;
            if (COUNT % ${NAME}_NT != 0 && v >= COUNT) break;
            int x, k;
            place(v, ax, x, k);
            #pragma unroll
            for (int u = 0; u < V; ++u) s[(k + (VX ? 0 : u)) * (X + 4) + x + (VX ? u : 0)] = r[i * V + u];
        }
    }
};

// Is every element of C's tile (m0, n0) zero under the triangular mask (tril / triu fused)?
__device__ __forceinline__ bool ${NAME}_masked_tile(long long m0, long long n0) {
    ${TILE_MASKED}
}

// Column j of thread column tx's micro-tile: with TN a multiple of 4, TN / 4 runs of 4 columns
// spread BN / (TN / 4) apart, so a warp's 16-byte shared loads of B are contiguous (no bank
// conflicts) and its stores of C run along whole rows; else TN consecutive columns.
#define ${NAME}_COL(tx, j) (GEMM_TN % 4 == 0 ? ((j) / 4) * (GEMM_BN / (GEMM_TN / 4 > 0 ? GEMM_TN / 4 : 1)) + (tx) * 4 + (j) % 4 \
                                             : (tx) * GEMM_TN + (j))
#define ${NAME}_SA (GEMM_BK * (GEMM_BM + 4))
#define ${NAME}_SB (GEMM_BK * (GEMM_BN + 4))
static_assert(2 * (${NAME}_SA + ${NAME}_SB) * 4 <= 48 * 1024, "GEMM tiles over 48 KB of static shared memory");

// The k loop for one (A mode, B mode) pair; sA / sB: two buffers of each tile (the caller's,
// so the 16 instantiations share one allocation).
template <bool SA_, bool VA, bool SB_, bool VB>
__device__ __forceinline__ void ${NAME}_main(const ${TA}* __restrict__ A, const ${TB}* __restrict__ B, float* acc,
                                             float* sA, float* sB,
                                             long long M, long long N, long long kbeg, long long kend,
                                             long long sam, long long sak, long long sbk, long long sbn,
                                             long long m0, long long n0, bool axa, bool axb) {
    using TileA = ${NAME}_Tile<${TA}, GEMM_BM, SA_, VA>;
    using TileB = ${NAME}_Tile<${TB}, GEMM_BN, SB_, VB>;
    constexpr int SA = ${NAME}_SA, SB = ${NAME}_SB;
    float ra[TileA::PER * TileA::V], rb[TileB::PER * TileB::V];
    const int tx = (int)threadIdx.x % (GEMM_BN / GEMM_TN), ty = (int)threadIdx.x / (GEMM_BN / GEMM_TN);
    const long long tiles = (kend - kbeg + GEMM_BK - 1) / GEMM_BK;
    if (tiles <= 0) return;
    TileA ta;
    TileB tb;
    ta.init(A, sam, sak, m0, kbeg, M, axa);
    tb.init(B, sbn, sbk, n0, kbeg, N, axb);
    const long long krest = kend - kbeg;  // k left from the current tile's start
    int krem = krest < GEMM_BK ? (int)krest : GEMM_BK;
    ta.load(ra, krem);
    tb.load(rb, krem);
    TileA::store(sA, ra, axa);
    TileB::store(sB, rb, axb);
    __syncthreads();
    for (long long t = 0; t < tiles; ++t) {
        const int cur = (int)(t & 1);
        const bool more = t + 1 < tiles;
        if (more) {  // the next tile's loads in flight during this tile's products
            const long long left = krest - (t + 1) * GEMM_BK;
            krem = left < GEMM_BK ? (int)left : GEMM_BK;
            ta.advance();
            tb.advance();
            ta.load(ra, krem);
            tb.load(rb, krem);
        }
        const float* a_s = sA + cur * SA + ty * GEMM_TM;
        const float* b_s = sB + cur * SB + ${NAME}_COL(tx, 0);
        #pragma unroll
        for (int kk = 0; kk < GEMM_BK; ++kk) {
            float a[GEMM_TM], b[GEMM_TN];
            #pragma unroll
            for (int i = 0; i < GEMM_TM; i += (GEMM_TM % 4 == 0) ? 4 : 1) {
                if constexpr (GEMM_TM % 4 == 0) load_f32<4>(a_s + kk * (GEMM_BM + 4) + i, a + i);
                else a[i] = a_s[kk * (GEMM_BM + 4) + i];
            }
            #pragma unroll
            for (int j = 0; j < GEMM_TN; j += (GEMM_TN % 4 == 0) ? 4 : 1) {
                if constexpr (GEMM_TN % 4 == 0) load_f32<4>(b_s + kk * (GEMM_BN + 4) + ${NAME}_COL(0, j), b + j);
                else b[j] = b_s[kk * (GEMM_BN + 4) + j];
            }
            #pragma unroll
            for (int i = 0; i < GEMM_TM; ++i)
                #pragma unroll
                for (int j = 0; j < GEMM_TN; ++j) acc[i * GEMM_TN + j] = fmaf(a[i], b[j], acc[i * GEMM_TN + j]);
        }
        if (more) {
            TileA::store(sA + (cur ^ 1) * SA, ra, axa);
            TileB::store(sB + (cur ^ 1) * SB, rb, axb);
        }
        __syncthreads();
    }
}

// One block: tile (blockIdx.x) of batch z and k slice s (blockIdx.y = z * split + s, strided by
// gridDim.y past 65535). PARTIAL: fp32 partial sums to W[s][z][m][n], else C in its dtype.
// SA_ / VA (SB_ / VB): A's (B's) load mode, scalar or vectors along m (n) or k, compiled into
// separate kernels so that each gets its own register allocation (the scalar paths cost ~40
// registers more, which would otherwise halve the fast path's occupancy); ax*: a scalar
// operand's loads run along m (n) rather than k.
template <bool SA_, bool VA, bool SB_, bool VB, bool PARTIAL>
__device__ __forceinline__ void ${NAME}_body(const ${TA}* __restrict__ A, const ${TB}* __restrict__ B,
                                             ${TC}* __restrict__ C, float* __restrict__ W,
                                             long long M, long long N, long long K, long long batch,
                                             long long sab, long long sam, long long sak,
                                             long long sbb, long long sbk, long long sbn,
                                             bool axa, bool axb, int split, long long kchunk, float* sA, float* sB) {
    const long long tiles_n = (N + GEMM_BN - 1) / GEMM_BN;
    const long long m0 = (long long)(blockIdx.x / tiles_n) * GEMM_BM, n0 = (long long)(blockIdx.x % tiles_n) * GEMM_BN;
    const int tx = (int)threadIdx.x % (GEMM_BN / GEMM_TN), ty = (int)threadIdx.x / (GEMM_BN / GEMM_TN);
    const bool masked = ${NAME}_masked_tile(m0, n0);
    for (long long zs = blockIdx.y; zs < batch * split; zs += gridDim.y) {
        const long long z = zs / split, s = zs % split;
        const long long kbeg = s * kchunk, kend = (kbeg + kchunk < K) ? kbeg + kchunk : K;
        float acc[GEMM_TM * GEMM_TN];
        #pragma unroll
        for (int i = 0; i < GEMM_TM * GEMM_TN; ++i) acc[i] = 0.0f;
        if (!masked)
            ${NAME}_main<SA_, VA, SB_, VB>(A + z * sab, B + z * sbb, acc, sA, sB, M, N, kbeg, kend, sam, sak, sbk, sbn,
                                           m0, n0, axa, axb);
        const long long nrest = N - n0;  // columns of the tile inside C
        const int ncols = nrest < GEMM_BN ? (int)nrest : GEMM_BN;
        #pragma unroll
        for (int i = 0; i < GEMM_TM; ++i) {
            const long long m = m0 + ty * GEMM_TM + i;
            if (m >= M) break;
            float* const wrow = PARTIAL ? W + ((s * batch + z) * M + m) * N + n0 : nullptr;
            ${TC}* const crow = PARTIAL ? nullptr : C + (z * M + m) * N + n0;
            #pragma unroll
            for (int j = 0; j < GEMM_TN; ++j) {
                const int c = ${NAME}_COL(tx, j);
                if (c >= ncols) continue;
                float v = acc[i * GEMM_TN + j];
${MASK}
                if constexpr (PARTIAL) {
                    wrow[c] = v;
                } else {
                    crow[c] = ${NARROW};
                }
            }
        }
    }
}

// Shared tiles are declared in the kernels, not in the inline body: the CPU emulator (tests)
// would share an inline function's static between candidates loaded in one process.
#define ${NAME}_SMEM __shared__ float4 sA4[2 * ${NAME}_SA / 4], sB4[2 * ${NAME}_SB / 4]; /* 16-byte aligned */ \
    float* const sA = reinterpret_cast<float*>(sA4); float* const sB = reinterpret_cast<float*>(sB4)

// ${NAME}_<a><b>: load modes of A and B (s: scalar, k: vectors along k, x: vectors along m / n);
// ${NAME}_<a><b>_partial (split-K slices): vector modes only (the host does not split K for
// an operand it reads element by element).
${ENTRIES}

// C[e] = the split partial sums of element e added in slice order, rounded once (BLOCK threads).
#ifndef BLOCK
#define BLOCK 256
#endif
extern "C" __global__ void __launch_bounds__(BLOCK)
${NAME}_sum(const float* __restrict__ W, ${TC}* __restrict__ C, long long n, int split)
{
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += step) {
        float v = W[e];
        for (int s = 1; s < split; ++s) v += W[s * n + e];
        C[e] = ${NARROW};
    }
}
