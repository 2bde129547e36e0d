// ---- flash attention ${NAME} (flash_attention.cu) -------------------------------------------
// out = softmax(q k^T * scale [causal: key j > query i + OFF masked]) v for q [BH, Sq, D],
// k / v [BH, Sk, D], one pass (FlashAttention-2 structure): block (x, y) = tile of BLOCK_M =
// 16 * WARPS queries of head y; warp w owns 16 query rows; keys are taken in chunks of
// BLOCK_N from the last (causal: the diagonal) to the first; each warp keeps the scores of
// its 16 rows x BLOCK_N keys in registers in the m16n8 accumulator layout (lane = 4 g + t
// holds rows g and g + 8, columns 2t, 2t + 1 of every 8-column tile), a running max and sum
// per row, and the output rows (HEAD_DIM columns, the same layout) rescaled as the max moves;
// written once at the end. Causal: chunks past the block's last query are never loaded, a
// warp skips the pieces past its own last row, only chunks that cross the diagonal or the end
// of the keys are masked. HEAD_DIM (a multiple of 16) bounds D at compile time; columns
// D..HEAD_DIM are zero in shared memory.
// bf16 (FLASH_MMA 1): tensor cores, mma.sync m16n8k16 bf16 -> fp32 for q k^T and p v; q's
//   fragments stay in registers (HEAD_DIM > 128: reloaded from shared memory per 16 columns,
//   to stay under 255 registers); k and v stream through a ring of STAGES pieces of KV_TILE
//   keys (cp.async, one barrier per piece; k via ldmatrix, v via ldmatrix.trans); p is rounded
//   to bf16 in registers and is the A operand of the p v product (see flash_softmax for why
//   the rounding points are FlashAttention's).
// fp32 (FLASH_MMA 0): the same layout computed with fp32 FMA on CUDA cores (TF32 tensor cores
//   would miss the fp32 tolerance); q and one k-or-v tile in shared memory.
// Without __CUDA_ARCH__ (the CPU emulator) mma / ldmatrix / cp.async run as plain C++ that
// produces the same per-lane fragments through warp shuffles.
#define ${NAME}_BM (16 * WARPS)
#define ${NAME}_MMA ${MMA}
#if ${NAME}_MMA
#define ${NAME}_ST (HEAD_DIM + 8)  // bf16 row stride: 16-byte rows offset by 4 banks
#else
#define ${NAME}_ST (HEAD_DIM + 1)  // fp32 row stride: rows offset by one bank
#endif

#ifndef RULES_FLASH_HELPERS
#define RULES_FLASH_HELPERS 1
__device__ __forceinline__ unsigned flash_smem_u32(const void* p) {
#if defined(__CUDA_ARCH__)
    unsigned a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
#else
    (void)p;
    return 0u;
#endif
}

// 16 bytes global -> shared, asynchronous on the device; zeros when !valid.
__device__ __forceinline__ void flash_cp16(void* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(flash_smem_u32(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
#else
    RULES_ALIGNED(dst, 16);
    if (valid) { RULES_ALIGNED(src, 16); std::memcpy(dst, src, 16); }
    else std::memset(dst, 0, 16);
#endif
}

__device__ __forceinline__ void flash_cp_commit() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// wait until at most N of this thread's commit groups are pending
template <int N>
__device__ __forceinline__ void flash_cp_wait() {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.wait_group %0;\n" :: "n"(N));
#endif
}

// Two floats -> bf16x2 (lo in the low half), round to nearest even.
__device__ __forceinline__ unsigned flash_pack_bf16(float lo, float hi) {
#if defined(__CUDA_ARCH__)
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (unsigned)f32_to_bf16(lo) | ((unsigned)f32_to_bf16(hi) << 16);
#endif
}

struct flash_u4 { unsigned r[4]; };
template <int V> struct flash_rows { static constexpr int value = V; };  // a row count as a type
struct flash_u2 { unsigned r[2]; };

// ldmatrix.x4: lane l passes the address of row (l & 7) of matrix (l >> 3); r[j] gets
// matrix j's row (lane >> 2), columns 2 (lane & 3) and + 1 (trans: column (lane >> 2),
// rows 2 (lane & 3) and + 1).
template <bool TRANS>
__device__ __forceinline__ void flash_ldsm_x4(unsigned (&r)[4], const unsigned short* row) {
#if defined(__CUDA_ARCH__)
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(flash_smem_u32(row)));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(flash_smem_u32(row)));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    RULES_ALIGNED(row, 16);
    for (int j = 0; j < 4; ++j) {
        if (TRANS) {
            const unsigned short* p0 = __shfl_sync(0xffffffffu, row, 8 * j + 2 * t);
            const unsigned short* p1 = __shfl_sync(0xffffffffu, row, 8 * j + 2 * t + 1);
            r[j] = (unsigned)p0[g] | ((unsigned)p1[g] << 16);
        } else {
            const unsigned short* p = __shfl_sync(0xffffffffu, row, 8 * j + g);
            r[j] = (unsigned)p[2 * t] | ((unsigned)p[2 * t + 1] << 16);
        }
    }
#endif
}

// c += a b, mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (PTX ISA fragments, g = lane
// >> 2, t = lane & 3): a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..], a[2] = A[g][2t+8..],
// a[3] = A[g+8][2t+8..]; b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; c[0..1] = C[g][2t..2t+1],
// c[2..3] = C[g+8][2t..2t+1].
__device__ __forceinline__ void flash_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    flash_u4 mine_a;
    for (int i = 0; i < 4; ++i) mine_a.r[i] = a[i];
    flash_u2 mine_b;
    mine_b.r[0] = b0; mine_b.r[1] = b1;
    float acc[4] = {c[0], c[1], c[2], c[3]};
    auto lo = [](unsigned x) { return bf16_to_f32((unsigned short)(x & 0xffffu)); };
    auto hi = [](unsigned x) { return bf16_to_f32((unsigned short)(x >> 16)); };
    for (int tp = 0; tp < 4; ++tp) {  // k = 2tp, 2tp+1 and 2tp+8, 2tp+9
        const flash_u4 A = __shfl_sync(0xffffffffu, mine_a, 4 * g + tp);       // rows g, g + 8
        const flash_u2 B0 = __shfl_sync(0xffffffffu, mine_b, 4 * (2 * t) + tp);  // column 2t
        const flash_u2 B1 = __shfl_sync(0xffffffffu, mine_b, 4 * (2 * t + 1) + tp);
        acc[0] += lo(A.r[0]) * lo(B0.r[0]) + hi(A.r[0]) * hi(B0.r[0]) + lo(A.r[2]) * lo(B0.r[1]) + hi(A.r[2]) * hi(B0.r[1]);
        acc[1] += lo(A.r[0]) * lo(B1.r[0]) + hi(A.r[0]) * hi(B1.r[0]) + lo(A.r[2]) * lo(B1.r[1]) + hi(A.r[2]) * hi(B1.r[1]);
        acc[2] += lo(A.r[1]) * lo(B0.r[0]) + hi(A.r[1]) * hi(B0.r[0]) + lo(A.r[3]) * lo(B0.r[1]) + hi(A.r[3]) * hi(B0.r[1]);
        acc[3] += lo(A.r[1]) * lo(B1.r[0]) + hi(A.r[1]) * hi(B1.r[0]) + lo(A.r[3]) * lo(B1.r[1]) + hi(A.r[3]) * hi(B1.r[1]);
    }
    for (int i = 0; i < 4; ++i) c[i] = acc[i];
#endif
}

// Online softmax of one key chunk for the lane's rows r0 and r0 + 8 (raw scores s in the
// m16n8 layout, columns n0 + 8 nt + 2t + e): masks, moves the running max m (of the raw
// scores), rescales the running sum l and the output o, and leaves p = exp2(s * scale_log2 -
// m * scale_log2) in s. The rounding points follow FlashAttention's (the max of the raw
// scores, one fma before exp2, l summed from p before p is rounded to bf16), so that p
// rounds to bf16 where the reference's does: rows with few keys have no averaging to hide
// a different rounding of their few weights (the reference's own error there is several
// times the bf16 tolerance).
template <int NT, int DT>
__device__ __forceinline__ void flash_softmax(float (&s)[NT][4], float (&m)[2], float (&l)[2], float (&o)[DT][4],
                                              float scale_log2, bool mask, int r0, int n0, int Sk, int causal, int off)
{
    const int t = threadIdx.x & 3;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = r0 + 8 * h;
        float mx = m[h];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
                float x = s[nt][2 * h + e];
                if (mask) {
                    const int col = n0 + 8 * nt + 2 * t + e;
                    if (col >= Sk || (causal && col > row + off)) x = RULES_NEG_INF;
                }
                s[nt][2 * h + e] = x;
                mx = rules_max(mx, x);
            }
        }
        mx = rules_max(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = rules_max(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float cur = mx == RULES_NEG_INF ? 0.0f : mx;  // every key so far masked: p = 0
        const float corr = exp2f((m[h] - cur) * scale_log2);  // m[h] == -inf: 0
        const float base = cur * scale_log2;
        m[h] = mx;
        float sum = 0.0f;
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
                const float p = exp2f(fmaf(s[nt][2 * h + e], scale_log2, -base));
                s[nt][2 * h + e] = p;
                sum += p;
            }
        }
        l[h] = l[h] * corr + sum;
        #pragma unroll
        for (int dt = 0; dt < DT; ++dt) { o[dt][2 * h] *= corr; o[dt][2 * h + 1] *= corr; }
    }
}
#endif  // RULES_FLASH_HELPERS

extern "C" __global__ void __launch_bounds__(32 * WARPS)
${NAME}_main(const ${T}* __restrict__ q, const ${T}* __restrict__ k, const ${T}* __restrict__ v,
             ${TO}* __restrict__ out, float scale_log2, long long Sq, long long Sk, long long D, int causal,
             long long off, int vec)
{
    constexpr int BM = ${NAME}_BM, BN = BLOCK_N, HD = HEAD_DIM, ST = ${NAME}_ST;
    constexpr int NT = BN / 8, DT = HD / 8;
    static_assert(HD % 16 == 0 && BN % 16 == 0, "HEAD_DIM and BLOCK_N are multiples of 16");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const long long bh = blockIdx.y;
    // causal: the heaviest query tiles (most keys) first
    const long long mt = causal ? (long long)gridDim.x - 1 - blockIdx.x : (long long)blockIdx.x;
    const int m0 = (int)mt * BM;
    const ${T}* __restrict__ qb = q + bh * Sq * D;
    const ${T}* __restrict__ kb = k + bh * Sk * D;
    const ${T}* __restrict__ vb = v + bh * Sk * D;
    int kend = (int)Sk;  // keys this block needs: [0, kend) (sequences under 2^31 - BM keys)
    if (causal) {
        const long long last = (long long)m0 + BM + off;  // past the last query's last key
        kend = last < kend ? (int)last : kend;
        if (kend < 0) kend = 0;
    }
    const int ntiles = (int)((kend + BN - 1) / BN);
    const int r0 = m0 + warp * 16 + g;  // the lane's rows: r0 and r0 + 8
    float o[DT][4], m[2] = {RULES_NEG_INF, RULES_NEG_INF}, l[2] = {0.0f, 0.0f};
    #pragma unroll
    for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
#if ${NAME}_MMA
    // Keys stream through shared memory in pieces of KT rows (k pieces of a BN-key chunk, then
    // its v pieces), STAGES pieces deep: cp.async fetches piece p + STAGES - 1 while piece p
    // is consumed (one barrier per piece). HEAD_DIM <= 128: q's fragments live in registers
    // and q is staged through the ring; above, q stays in shared memory after the ring and
    // its fragments are reloaded per 16 columns (the output rows take HEAD_DIM / 2 registers).
    constexpr int KT = KV_TILE < BN ? KV_TILE : BN, NS = STAGES, NSUB = BN / KT, KS = KT / 16;
    static_assert(KT % 16 == 0 && BN % KT == 0 && NS >= 2, "KV_TILE: a multiple of 16 dividing BLOCK_N");
    constexpr bool QREG = HD <= 128;
    constexpr int RING = NS * KT * ST, QSZ = BM * ST;
    constexpr int ELEMS = QREG ? (RING > QSZ ? RING : QSZ) : RING + QSZ;
    static_assert(ELEMS * 2 <= 48 * 1024, "flash tiles exceed 48 KB of shared memory");
    __shared__ uint4 smem16[ELEMS / 8];  // 16-byte aligned
    unsigned short* smem = reinterpret_cast<unsigned short*>(smem16);
    unsigned short* sQ = QREG ? smem : smem + RING;
    constexpr int CH = HD / 8;  // 16-byte chunks per row
    const int d32 = (int)D;
    // rows [r, r + N) of src (a [len, D] matrix) -> dst rows, zeros past len / D. N is a
    // compile-time row count, so a thread's 16-byte chunks (row c / CH, column (c % CH) * 8 for
    // c = threadIdx.x + k * 32 WARPS) are constants but for threadIdx.x: the loop unrolls
    // fully, its offsets fold, and a piece wholly inside the matrix (every piece of a long
    // sequence but the last) copies with no bound checks and one 64-bit offset.
    auto stage = [&](unsigned short* dst, const unsigned short* src, int r, auto rows, int len) {
        constexpr int N = decltype(rows)::value, NTH = 32 * WARPS, ITERS = (N * CH + NTH - 1) / NTH;
        if (vec) {
            const unsigned short* base = src + (long long)r * D;
            if (r + N <= len && d32 == HD) {
                #pragma unroll
                for (int k = 0; k < ITERS; ++k) {
                    const int c = (int)threadIdx.x + k * NTH;
                    if ((N * CH) % NTH != 0 && c >= N * CH) break;
                    const int i = c / CH, j = (c % CH) * 8;
                    flash_cp16(dst + i * ST + j, base + i * HD + j, true);
                }
            } else {
                #pragma unroll
                for (int k = 0; k < ITERS; ++k) {
                    const int c = (int)threadIdx.x + k * NTH;
                    if ((N * CH) % NTH != 0 && c >= N * CH) break;
                    const int i = c / CH, j = (c % CH) * 8;
                    const bool ok = r + i < len && j < d32;
                    flash_cp16(dst + i * ST + j, ok ? base + i * d32 + j : src, ok);
                }
            }
        } else {
            for (int c = threadIdx.x; c < N * HD; c += 32 * WARPS) {
                const int i = c / HD, j = c % HD;
                dst[i * ST + j] = r + i < len && j < d32 ? src[(long long)(r + i) * D + j] : (unsigned short)0;
            }
        }
    };
    const int lj = lane >> 3, lr = lane & 7;  // ldmatrix: matrix lj, row lr
    stage(sQ, qb, m0, flash_rows<BM>{}, (int)Sq);
    flash_cp_commit();
    flash_cp_wait<0>();
    __syncthreads();
    unsigned qf[QREG ? HD / 16 : 1][4];
    const unsigned short* qrow = sQ + (warp * 16 + lr + (lj & 1) * 8) * ST + (lj >> 1) * 8;
    if (QREG) {
        #pragma unroll
        for (int kk = 0; kk < (QREG ? HD / 16 : 0); ++kk) flash_ldsm_x4<false>(qf[QREG ? kk : 0], qrow + kk * 16);
        __syncthreads();  // the ring reuses q's buffer
    }
    // chunks run from the last (the diagonal when causal) down to the first, as FlashAttention
    const int npieces = 2 * NSUB * ntiles;
    auto issue = [&](int p) {  // piece p -> ring slot p % NS (always one commit group)
        if (p < npieces) {
            const int c = ntiles - 1 - p / (2 * NSUB), r = p % (2 * NSUB);
            const int n0 = c * BN + (r % NSUB) * KT;
            if (n0 < kend) stage(smem + (p % NS) * KT * ST, r < NSUB ? kb : vb, n0, flash_rows<KT>{}, kend);
        }
        flash_cp_commit();
    };
    #pragma unroll
    for (int p = 0; p < NS - 1; ++p) issue(p);
    int piece = 0;
    const int wlast = m0 + warp * 16 + 15 + (int)off;  // keys past it: masked for all the warp's rows
    for (int c = ntiles - 1; c >= 0; --c) {
        const int c0 = c * BN;
        float s[NT][4];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        #pragma unroll
        for (int sub = 0; sub < NSUB; ++sub, ++piece) {
            flash_cp_wait<NS - 2>();
            __syncthreads();  // piece in for every thread; every warp done with piece - 1
            issue(piece + NS - 1);
            const int n0 = c0 + sub * KT;
            if (n0 >= kend || (causal && n0 > wlast)) continue;
            const unsigned short* row = smem + (piece % NS) * KT * ST + (lr + (lj >> 1) * 8) * ST + (lj & 1) * 8;
            #pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk) {
                if (!QREG) flash_ldsm_x4<false>(qf[0], qrow + kk * 16);
                const unsigned (&a)[4] = qf[QREG ? kk : 0];
                #pragma unroll
                for (int np = 0; np < KS; ++np) {
                    unsigned b[4];
                    flash_ldsm_x4<false>(b, row + np * 16 * ST + kk * 16);
                    flash_mma(s[sub * 2 * KS + 2 * np], a, b[0], b[1]);
                    flash_mma(s[sub * 2 * KS + 2 * np + 1], a, b[2], b[3]);
                }
            }
        }
        const bool mask = c0 + BN > kend || (causal && c0 + BN - 1 > m0 + off);
        flash_softmax<NT, DT>(s, m, l, o, scale_log2, mask, r0, c0, (int)Sk, causal, (int)off);
        #pragma unroll
        for (int sub = 0; sub < NSUB; ++sub, ++piece) {
            flash_cp_wait<NS - 2>();
            __syncthreads();
            issue(piece + NS - 1);
            const int n0 = c0 + sub * KT;
            if (n0 >= kend || (causal && n0 > wlast)) continue;
            const unsigned short* row = smem + (piece % NS) * KT * ST + (lr + (lj & 1) * 8) * ST + (lj >> 1) * 8;
            #pragma unroll
            for (int kk = 0; kk < KS; ++kk) {
                const int k2 = 2 * (sub * KS + kk);
                unsigned pa[4];
                pa[0] = flash_pack_bf16(s[k2][0], s[k2][1]);
                pa[1] = flash_pack_bf16(s[k2][2], s[k2][3]);
                pa[2] = flash_pack_bf16(s[k2 + 1][0], s[k2 + 1][1]);
                pa[3] = flash_pack_bf16(s[k2 + 1][2], s[k2 + 1][3]);
                #pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    unsigned b[4];
                    flash_ldsm_x4<true>(b, row + kk * 16 * ST + dp * 16);
                    flash_mma(o[2 * dp], pa, b[0], b[1]);
                    flash_mma(o[2 * dp + 1], pa, b[2], b[3]);
                }
            }
        }
    }
    flash_cp_wait<0>();
#else
    static_assert((BM + BN) * ST * 4 <= 48 * 1024, "flash tiles exceed 48 KB of shared memory");
    __shared__ float sQ[BM * ST];
    __shared__ float sKV[BN * ST];
    auto stage = [&](float* dst, const float* src, long long r, int n, long long len) {
        for (int c = threadIdx.x; c < n * HD; c += 32 * WARPS) {
            const int i = c / HD, j = c % HD;
            dst[i * ST + j] = r + i < len && j < D ? src[(r + i) * D + j] : 0.0f;
        }
    };
    stage(sQ, qb, m0, BM, Sq);
    const float* qrow = sQ + (warp * 16 + g) * ST;
    for (int it = 0; it < ntiles; ++it) {
        const long long n0 = (long long)it * BN;
        __syncthreads();  // every warp is done with the previous v tile (and q is in)
        stage(sKV, kb, n0, BN, kend);
        __syncthreads();
        float s[NT][4];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        #pragma unroll 4
        for (int d = 0; d < HD; ++d) {
            const float q0 = qrow[d], q1 = qrow[8 * ST + d];
            #pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const float k0 = sKV[(8 * nt + 2 * t) * ST + d], k1 = sKV[(8 * nt + 2 * t + 1) * ST + d];
                s[nt][0] = fmaf(q0, k0, s[nt][0]);
                s[nt][1] = fmaf(q0, k1, s[nt][1]);
                s[nt][2] = fmaf(q1, k0, s[nt][2]);
                s[nt][3] = fmaf(q1, k1, s[nt][3]);
            }
        }
        const bool mask = n0 + BN > kend || (causal && n0 + BN - 1 > m0 + off);
        flash_softmax<NT, DT>(s, m, l, o, scale_log2, mask, r0, (int)n0, (int)Sk, causal, (int)off);
        __syncthreads();  // every warp is done with the k tile
        stage(sKV, vb, n0, BN, kend);
        __syncthreads();
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            #pragma unroll
            for (int tp = 0; tp < 4; ++tp) {  // keys 8 nt + 2 tp, + 1: held by lane 4 g + tp
                const int src = 4 * g + tp;
                const float p00 = __shfl_sync(0xffffffffu, s[nt][0], src), p01 = __shfl_sync(0xffffffffu, s[nt][1], src);
                const float p10 = __shfl_sync(0xffffffffu, s[nt][2], src), p11 = __shfl_sync(0xffffffffu, s[nt][3], src);
                const float* v0 = sKV + (8 * nt + 2 * tp) * ST + 2 * t;
                const float* v1 = v0 + ST;
                #pragma unroll
                for (int dt = 0; dt < DT; ++dt) {
                    const float a0 = v0[8 * dt], a1 = v0[8 * dt + 1], b0 = v1[8 * dt], b1 = v1[8 * dt + 1];
                    o[dt][0] = fmaf(p00, a0, fmaf(p01, b0, o[dt][0]));
                    o[dt][1] = fmaf(p00, a1, fmaf(p01, b1, o[dt][1]));
                    o[dt][2] = fmaf(p10, a0, fmaf(p11, b0, o[dt][2]));
                    o[dt][3] = fmaf(p10, a1, fmaf(p11, b1, o[dt][3]));
                }
            }
        }
    }
#endif
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        float sum = l[h];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // a row with every key masked: 0
        const long long row = r0 + 8 * h;
        if (row < Sq) {
            ${TO}* __restrict__ orow = out + (bh * Sq + row) * D;
            #pragma unroll
            for (int dt = 0; dt < DT; ++dt) {
                const long long c = 8 * dt + 2 * t;
                if (c < D) orow[c] = ${NARROW0};
                if (c + 1 < D) orow[c + 1] = ${NARROW1};
            }
        }
    }
}
