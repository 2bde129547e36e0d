// ---- flash attention ${NAME} (flash_attention.cu) -------------------------------------------
// out = softmax(q k^T * scale [causal: key j > query i + OFF masked]) v for q [BH, Sq, D],
// k / v [BH, Sk, D], one pass (FlashAttention-2 structure): block (x, y) = tile of BLOCK_M =
// 16 * MTILES * WARPS queries of head y; warp w owns MTILES m-tiles of 16 query rows; keys are
// taken in chunks of BLOCK_N from the last (causal: the diagonal) to the first; each warp keeps
// the scores of its rows x BLOCK_N keys in registers in the m16n8 accumulator layout (lane =
// 4 g + t holds rows g and g + 8, columns 2t, 2t + 1 of every 8-column tile), a running max
// and sum per row, and the output rows (HEAD_DIM columns, the same layout) rescaled as the max
// moves; written once at the end. Causal: chunks past the block's last query are never loaded,
// a warp skips the chunks past its own last row, only chunks that cross the diagonal or the
// end of the keys are masked. HEAD_DIM (a multiple of 16) bounds D at compile time; columns
// D..HEAD_DIM are zero in shared memory.
// bf16 (FLASH_MMA 1): tensor cores, mma.sync m16n8k16 bf16 -> fp32 for q k^T and p v; k and v
//   each in one buffer of BLOCK_N keys (cp.async, k via ldmatrix, v via ldmatrix.trans), in
//   dynamic shared memory (${NAME}_SMEM bytes, over 48 KB for the larger head dims); p is
//   rounded to bf16 in registers and is the A operand of the p v product (see flash_softmax for
//   why the rounding points are FlashAttention's).
// fp32 (FLASH_MMA 0): the same layout computed with fp32 FMA on CUDA cores (TF32 tensor cores
//   would miss the fp32 tolerance); q and one k-or-v tile in static shared memory; MTILES 1.
// Without __CUDA_ARCH__ (the CPU emulator) mma / ldmatrix / cp.async run as plain C++ that
// produces the same per-lane fragments through warp shuffles.
#define ${NAME}_BM (16 * MTILES * WARPS)
#define ${NAME}_MMA ${MMA}
#if ${NAME}_MMA == 2
// wgmma (sm_90a): q, k and v tiles unpadded in 128-byte-swizzled [rows][64] column blocks,
// 1024-byte aligned (the dynamic window's start is aligned up: 1024 more bytes)
// (and STAGES > 1: a ring of STAGES k + v chunk pairs, each chunk's loads issued STAGES - 1
// chunks ahead of its use)
#define ${NAME}_ST HEAD_DIM
#ifdef STAGES
#define ${NAME}_STAGES STAGES
#else
#define ${NAME}_STAGES 1
#endif
#define ${NAME}_SMEM (2 * (${NAME}_BM + 2 * ${NAME}_STAGES * BLOCK_N) * HEAD_DIM + 1024)
#ifdef OVERLAP  // 1 (with STAGES > 2): the softmax of a chunk overlaps the p v of the one before
#define ${NAME}_OVERLAP OVERLAP
#else
#define ${NAME}_OVERLAP 0
#endif
#ifdef MINB
#define ${NAME}_MINB MINB
#else
#define ${NAME}_MINB 1
#endif
#define ${NAME}_LSUM 0
#elif ${NAME}_MMA
#define ${NAME}_ST (HEAD_DIM + 8)  // bf16 row stride: 16-byte rows offset by 4 banks
// q's fragments in registers unless the m-tiles' output rows and scores leave too few
#define ${NAME}_QREG (MTILES * HEAD_DIM <= 128 && MTILES * (HEAD_DIM + BLOCK_N) <= 256)
// q staged in V's buffer (read into registers before V's first chunk arrives)
#define ${NAME}_QINV (${NAME}_QREG && ${NAME}_BM <= BLOCK_N)
// dynamic shared memory: k and v chunks, and q unless it is staged in V's buffer
#define ${NAME}_SMEM (2 * (2 * BLOCK_N + (${NAME}_QINV ? 0 : ${NAME}_BM)) * ${NAME}_ST)
// Blocks per SM the registers must allow (__launch_bounds__' second argument): MINB where a
// setting defines it, else 1 (ptxas chooses: 180 registers for head dim 64 and 4 warps, 2
// blocks per SM; held to 3 blocks, 168 and no spills without the causal mask, a 28-byte spill
// with it).
#ifdef MINB
#define ${NAME}_MINB MINB
#else
#define ${NAME}_MINB 1
#endif
// LSUM 1: each row's sum of p comes out of the p v product, as one more 8-column output tile
// whose B operand is all ones (one mma per 16 keys and m-tile, in place of the 31 additions a
// row and chunk of the sum's tree and the quad's two shuffles at the end). The sum then adds p
// as rounded to bf16, the weights the output adds, where FlashAttention adds p before rounding:
// every output of a row moves by the same factor, within 2^-8 (every p >= 0 and rounds within
// bf16's unit roundoff 2^-8), against the bf16 allowance of 3e-2 relative: no cancellation can
// amplify it, unlike a change of where p itself rounds (see flash_softmax; test_flash_rounding).
// LSUM -1 (the default): 1 with one m-tile a warp, where it also takes registers (head dim 64,
// 4 warps: 231 -> 225; 8 warps: 223 -> 212; 128: 251 -> 243), 0 with two, where the extra
// accumulators spill (8 warps: 0 -> 148 bytes; nvcc 13, sm_90, -ftz).
#ifndef LSUM
#define LSUM -1
#endif
#define ${NAME}_LSUM (LSUM < 0 ? MTILES == 1 : LSUM != 0)
#else
#define ${NAME}_ST (HEAD_DIM + 1)  // fp32 row stride: rows offset by one bank
#define ${NAME}_MINB 1
#define ${NAME}_LSUM 0
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

// A bf16 element in shared memory: its shared-window address on the device (so that offsets
// fold into the instruction's immediate and no generic-to-shared conversion is repeated), its
// pointer in the emulator.
struct flash_sp {
#if defined(__CUDA_ARCH__)
    unsigned a;
    __device__ __forceinline__ flash_sp operator+(int elems) const { return {a + 2u * (unsigned)elems}; }
#else
    unsigned short* p;
    flash_sp operator+(int elems) const { return {p + elems}; }
#endif
};

__device__ __forceinline__ flash_sp flash_sp_of(unsigned short* p) {
#if defined(__CUDA_ARCH__)
    return {flash_smem_u32(p)};
#else
    return {p};
#endif
}

// 16 bytes global -> shared, asynchronous on the device; zeros when !valid.
__device__ __forceinline__ void flash_cp16(flash_sp dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst.a), "l"(src), "r"(valid ? 16 : 0));
#else
    RULES_ALIGNED(dst.p, 16);
    if (valid) { RULES_ALIGNED(src, 16); std::memcpy(dst.p, src, 16); }
    else std::memset(dst.p, 0, 16);
#endif
}

// 16 bytes global -> shared, asynchronous on the device (always valid: one instruction).
__device__ __forceinline__ void flash_cp16(flash_sp dst, const void* src) {
#if defined(__CUDA_ARCH__)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dst.a), "l"(src));
#else
    flash_cp16(dst, src, true);
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
__device__ __forceinline__ void flash_ldsm_x4(unsigned (&r)[4], flash_sp row) {
#if defined(__CUDA_ARCH__)
    if (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(row.a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(row.a));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    RULES_ALIGNED(row.p, 16);
    for (int j = 0; j < 4; ++j) {
        if (TRANS) {
            const unsigned short* p0 = __shfl_sync(0xffffffffu, row.p, 8 * j + 2 * t);
            const unsigned short* p1 = __shfl_sync(0xffffffffu, row.p, 8 * j + 2 * t + 1);
            r[j] = (unsigned)p0[g] | ((unsigned)p1[g] << 16);
        } else {
            const unsigned short* p = __shfl_sync(0xffffffffu, row.p, 8 * j + g);
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

// v[0] = the max (OP 0) or the sum (OP 1) of v[0..N), folded pairwise (a tree of ceil(log2 N)
// dependent steps: the compiler keeps a written order, so a loop would be a chain of N - 1)
template <int N, int OP>
__device__ __forceinline__ void flash_fold(float (&v)[N]) {
    #pragma unroll
    for (int w = 1; w < N; w *= 2) {
        #pragma unroll
        for (int i = 0; i + w < N; i += 2 * w) v[i] = OP == 0 ? rules_max(v[i], v[i + w]) : v[i] + v[i + w];
    }
}

// Online softmax of one key chunk for the lane's rows r0 and r0 + 8 (raw scores s in the
// m16n8 layout, columns n0 + 8 nt + 2t + e): masks, moves the running max m (of the raw
// scores), rescales the running sum l and the output o, and leaves p = exp2(s * scale_log2 -
// m * scale_log2) in s. The rounding points follow FlashAttention's (the max of the raw
// scores, one fma before exp2, l summed from p before p is rounded to bf16; with LSUM the
// caller sums p as rounded instead, and l here is dead code), so that p
// rounds to bf16 where the reference's does: rows with few keys have no averaging to hide
// a different rounding of their few weights (the reference's own error there is several
// times the bf16 tolerance).
// DEFER: o is left alone (a wgmma may still be accumulating into it) and the factor it must be
// multiplied by is written to corr_out[h] instead. MASKED is a compile-time copy of mask (see
// flash_softmax below).
template <int NT, int DT, bool DEFER, bool MASKED>
__device__ __forceinline__ void flash_softmax_body(float (&s)[NT][4], float (&m)[2], float (&l)[2], float (&o)[DT][4],
                                                   float scale_log2, int r0, int n0, int Sk, int causal, int off,
                                                   float* corr_out)
{
    constexpr bool mask = MASKED;
    const int t = threadIdx.x & 3;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = r0 + 8 * h;
        float part[NT];  // per 8-key tile, then folded as a tree: 4 dependent steps for 16 tiles, not 32
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
            }
            part[nt] = rules_max(s[nt][2 * h], s[nt][2 * h + 1]);
        }
        flash_fold<NT, 0>(part);  // a max is exact: the same value in any order
        float mx = rules_max(m[h], part[0]);
        mx = rules_max(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = rules_max(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float cur = mx == RULES_NEG_INF ? 0.0f : mx;  // every key so far masked: p = 0
        const float corr = exp2f((m[h] - cur) * scale_log2);  // m[h] == -inf: 0
        const float base = cur * scale_log2;
        m[h] = mx;
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) s[nt][2 * h + e] = exp2f(fmaf(s[nt][2 * h + e], scale_log2, -base));
            part[nt] = s[nt][2 * h] + s[nt][2 * h + 1];
        }
        flash_fold<NT, 1>(part);  // the chunk's sum in a tree (fp32: a different order rounds within an ulp or so)
        l[h] = l[h] * corr + part[0];
        if (DEFER) {
            corr_out[h] = corr;
        } else {
            #pragma unroll
            for (int dt = 0; dt < DT; ++dt) { o[dt][2 * h] *= corr; o[dt][2 * h + 1] *= corr; }
        }
    }
}
// One branch on mask around two copies of the body: with mask a runtime value inside one body,
// the compiler if-converted the masking into about 200 predicated instructions a 128-key chunk
// that ran on every chunk, masked or not (sm_90a SASS, head dim 64).
template <int NT, int DT, bool DEFER = false>
__device__ __forceinline__ void flash_softmax(float (&s)[NT][4], float (&m)[2], float (&l)[2], float (&o)[DT][4],
                                              float scale_log2, bool mask, int r0, int n0, int Sk, int causal, int off,
                                              float* corr_out = nullptr)
{
    if (mask) flash_softmax_body<NT, DT, DEFER, true>(s, m, l, o, scale_log2, r0, n0, Sk, causal, off, corr_out);
    else flash_softmax_body<NT, DT, DEFER, false>(s, m, l, o, scale_log2, r0, n0, Sk, causal, off, corr_out);
}
// ---- wgmma (warpgroup MMA, sm_90a) ----------------------------------------------------------
// Tiles are [R rows][HEAD_DIM] in column blocks of 64 (128-byte rows), 16-byte chunks swizzled:
// element (r, c) at flash_swz<R>(r, c). A warpgroup's product is, per warp, the 16 rows the
// mma.sync layout gives it (lane 4 g + t: rows g, g + 8, columns 8 j + 2 t, + 1), so the
// softmax and the epilogue are the mma.sync path's. The CPU emulator computes the same sums as
// four mma.sync per 8 columns, reading the operands through flash_swz: it checks this kernel's
// layout model; scripts/wgmma_probe.py checks the descriptors against the hardware.
template <int R>
__device__ __forceinline__ int flash_swz(int r, int c) {
    return (c >> 6) * R * 64 + r * 64 + ((((c >> 3) & 7) ^ (r & 7)) << 3) + (c & 7);
}
// rows [r, r + N) of src (rows of D elements) -> the swizzled tile dst of N rows, CH 16-byte
// chunks a row, NTH threads; zeros past row len and column D
template <int N, int CH, int NTH>
__device__ __forceinline__ void flash_stage_swz(unsigned short* dst, const unsigned short* src, int r, int len,
                                                int d32, long long D, bool vec) {
    for (int c = threadIdx.x; c < N * CH; c += NTH) {
        const int i = c / CH, j = (c % CH) * 8;
        const bool ok = r + i < len && j < d32;
        const unsigned short* from = ok ? src + (long long)(r + i) * D + j : src;
        if (vec) {
            flash_cp16(flash_sp_of(dst + flash_swz<N>(i, j)), from, ok);
        } else {
            for (int e = 0; e < 8; ++e)
                dst[flash_swz<N>(i, j + e)] = ok && j + e < d32 ? from[e] : (unsigned short)0;
        }
    }
}

// p (the m16n8 score layout, NT = 2 KT tiles of 8 keys) as bf16 pairs: the A operand of p v
// per 16 keys (mma.sync's fragment order, which wgmma's register A shares)
template <int KT, int NT>
__device__ __forceinline__ void flash_pack_p(unsigned (&pa)[KT][4], const float (&s)[NT][4]) {
    static_assert(NT == 2 * KT, "16 keys a p fragment");
    #pragma unroll
    for (int kk = 0; kk < KT; ++kk) {
        pa[kk][0] = flash_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
        pa[kk][1] = flash_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
        pa[kk][2] = flash_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        pa[kk][3] = flash_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

#if defined(__CUDA_ARCH__)
__device__ __forceinline__ unsigned long long flash_desc(const unsigned short* p, unsigned lbo, unsigned sbo) {
    const unsigned a = flash_smem_u32(p);
    return (unsigned long long)((a >> 4) & 0x3FFF) | ((unsigned long long)((lbo >> 4) & 0x3FFF) << 16) |
           ((unsigned long long)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);  // 128-byte swizzle
}
// the 64 accumulator operands of an m64n128 wgmma, %0..%63
#define FLASH_ACC64 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25," \
    "%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51," \
    "%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"
#define FLASH_F8(a, i) "+f"(a[i][0]), "+f"(a[i][1]), "+f"(a[i][2]), "+f"(a[i][3]), "+f"(a[i + 1][0]), \
    "+f"(a[i + 1][1]), "+f"(a[i + 1][2]), "+f"(a[i + 1][3])
#endif

__device__ __forceinline__ void flash_wg_fence() {
#if defined(__CUDA_ARCH__)
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

// Registers pinned at this point of the instruction stream (an empty asm that reads and writes
// them): a wgmma's accumulator and A operands are written by plain instructions, which the
// compiler would otherwise move past a wgmma.fence or above a wgmma.wait_group (ptxas then
// injects a warpgroup.arrive, C7519, or reads an accumulator still being written).
template <int N>
__device__ __forceinline__ void flash_pin(float (&r)[N][4]) {
#if defined(__CUDA_ARCH__)
    #pragma unroll
    for (int i = 0; i < N; ++i)
        asm volatile("" : "+f"(r[i][0]), "+f"(r[i][1]), "+f"(r[i][2]), "+f"(r[i][3]) :: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void flash_pin(unsigned (&r)[N][4]) {
#if defined(__CUDA_ARCH__)
    #pragma unroll
    for (int i = 0; i < N; ++i)
        asm volatile("" : "+r"(r[i][0]), "+r"(r[i][1]), "+r"(r[i][2]), "+r"(r[i][3]) :: "memory");
#endif
}

// dst = src through explicit moves (new registers: the compiler cannot fold the copy away)
template <int N>
__device__ __forceinline__ void flash_copy(float (&dst)[N][4], const float (&src)[N][4]) {
    #pragma unroll
    for (int i = 0; i < N; ++i)
        #pragma unroll
        for (int j = 0; j < 4; ++j) {
#if defined(__CUDA_ARCH__)
            asm volatile("mov.b32 %0, %1;" : "=f"(dst[i][j]) : "f"(src[i][j]));
#else
            dst[i][j] = src[i][j];
#endif
        }
}

__device__ __forceinline__ void flash_wg_commit() {
#if defined(__CUDA_ARCH__)
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// until at most N committed wgmma groups are pending
template <int N>
__device__ __forceinline__ void flash_wg_wait() {
#if defined(__CUDA_ARCH__)
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory");
#endif
}

__device__ __forceinline__ void flash_wg_commit_wait() {
#if defined(__CUDA_ARCH__)
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}

// what cp.async wrote (the generic proxy) made visible to wgmma's reads (the async proxy)
__device__ __forceinline__ void flash_proxy_fence() {
#if defined(__CUDA_ARCH__)
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// s += q k^T over 16 columns kq..kq + 15 of one column block: q's 64 rows (the warpgroup's)
// at qb, k's 128 rows at kb, both K-major (LBO unused, SBO 8 rows = 1024 bytes)
#if defined(__CUDA_ARCH__)
// the q k^T wgmma on ready descriptors (the overlapped form computes them before its fence)
__device__ __forceinline__ void flash_wg_qk_d(float (&s)[16][4], unsigned long long da, unsigned long long db) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        FLASH_ACC64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : FLASH_F8(s, 0), FLASH_F8(s, 2), FLASH_F8(s, 4), FLASH_F8(s, 6), FLASH_F8(s, 8), FLASH_F8(s, 10),
          FLASH_F8(s, 12), FLASH_F8(s, 14)
        : "l"(da), "l"(db));
}
#endif
__device__ __forceinline__ void flash_wg_qk(float (&s)[16][4], const unsigned short* qb, const unsigned short* kb, int kq) {
#if defined(__CUDA_ARCH__)
    flash_wg_qk_d(s, flash_desc(qb + kq, 16, 1024), flash_desc(kb + kq, 16, 1024));
#else
    const int lane = threadIdx.x & 31, w = (threadIdx.x >> 5) & 3, g = lane >> 2, t = lane & 3;
    auto at = [&](const unsigned short* m, int r, int c) {  // the bf16 pair (r, c), (r, c + 1) of a swizzled block
        const int i = r * 64 + ((((c >> 3) & 7) ^ (r & 7)) << 3) + (c & 7);
        return (unsigned)m[i] | ((unsigned)m[i + 1] << 16);
    };
    const int r0 = 16 * w + g;
    unsigned a[4] = {at(qb, r0, kq + 2 * t), at(qb, r0 + 8, kq + 2 * t), at(qb, r0, kq + 8 + 2 * t),
                     at(qb, r0 + 8, kq + 8 + 2 * t)};
    for (int j = 0; j < 16; ++j) flash_mma(s[j], a, at(kb, 8 * j + g, kq + 2 * t), at(kb, 8 * j + g, kq + 8 + 2 * t));
#endif
}

// o += p v over 16 keys: p in registers (mma.sync's A fragments of the warp's 16 rows), v's
// rows kv..kv + 15 of a [BN][DT * 8] swizzled tile at vb, N-major (LBO: the next 64 columns,
// BN rows on; SBO: the next 8 keys, 1024 bytes)
#if defined(__CUDA_ARCH__)
// the p v wgmma on a ready descriptor of v
template <int DT>
__device__ __forceinline__ void flash_wg_pv_d(float (&o)[DT][4], const unsigned (&p)[4], unsigned long long db) {
    if constexpr (DT == 8) {
        asm volatile(
            "{\n.reg .pred q;\nsetp.ne.b32 q, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
            "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,"
            "%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, q, 1, 1, 1;\n}\n"
            : FLASH_F8(o, 0), FLASH_F8(o, 2), FLASH_F8(o, 4), FLASH_F8(o, 6)
            : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(db));
    } else {
        static_assert(DT == 16, "wgmma p v: head dim 64 or 128");
        asm volatile(
            "{\n.reg .pred q;\nsetp.ne.b32 q, 1, 0;\n"
            "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
            FLASH_ACC64 ", {%64,%65,%66,%67}, %68, q, 1, 1, 1;\n}\n"
            : FLASH_F8(o, 0), FLASH_F8(o, 2), FLASH_F8(o, 4), FLASH_F8(o, 6), FLASH_F8(o, 8), FLASH_F8(o, 10),
              FLASH_F8(o, 12), FLASH_F8(o, 14)
            : "r"(p[0]), "r"(p[1]), "r"(p[2]), "r"(p[3]), "l"(db));
    }
}
#endif
template <int DT, int BN>
__device__ __forceinline__ void flash_wg_pv(float (&o)[DT][4], const unsigned (&p)[4], const unsigned short* vb, int kv) {
#if defined(__CUDA_ARCH__)
    flash_wg_pv_d<DT>(o, p, flash_desc(vb + kv * 64, BN * 128, 1024));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    auto at = [&](int key, int c) { return (unsigned)vb[flash_swz<BN>(key, c)]; };
    for (int j = 0; j < DT; ++j) {
        const int c = 8 * j + g;
        const unsigned b0 = at(kv + 2 * t, c) | (at(kv + 2 * t + 1, c) << 16);
        const unsigned b1 = at(kv + 2 * t + 8, c) | (at(kv + 2 * t + 9, c) << 16);
        flash_mma(o[j], p, b0, b1);
    }
#endif
}
#endif  // RULES_FLASH_HELPERS

extern "C" __global__ void __launch_bounds__(32 * WARPS, ${NAME}_MINB)
${NAME}_main(const ${T}* __restrict__ q, const ${T}* __restrict__ k, const ${T}* __restrict__ v,
             ${TO}* __restrict__ out, float scale_log2, long long Sq, long long Sk, long long D, int causal,
             long long off, int vec)
{
    constexpr int BM = ${NAME}_BM, BN = BLOCK_N, HD = HEAD_DIM, ST = ${NAME}_ST, MTL = MTILES, ROWS = 16 * MTL;
    constexpr int NT = BN / 8, DT = HD / 8;
    static_assert(HD % 16 == 0 && BN % 16 == 0, "HEAD_DIM and BLOCK_N are multiples of 16");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const long long bh = blockIdx.y;
    // causal: the heaviest query tiles (most keys) first
    const long long mt_ = causal ? (long long)gridDim.x - 1 - blockIdx.x : (long long)blockIdx.x;
    const int m0 = (int)mt_ * BM;
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
    const int r0 = m0 + warp * ROWS + g;  // the lane's rows: r0 + 16 i and r0 + 16 i + 8 for m-tile i
    const int wfirst = m0 + warp * ROWS + (int)off;  // keys past it are masked for some of the warp's rows
    const int wlast = wfirst + ROWS - 1;  // keys past it: masked for all the warp's rows
    constexpr int DTL = DT + ${NAME}_LSUM;  // LSUM: the row sums' tile after the output's
    float o[MTL][DTL][4], m[MTL][2], l[MTL][2];
    #pragma unroll
    for (int i = 0; i < MTL; ++i) {
        m[i][0] = m[i][1] = RULES_NEG_INF;
        l[i][0] = l[i][1] = 0.0f;
        #pragma unroll
        for (int dt = 0; dt < DTL; ++dt) o[i][dt][0] = o[i][dt][1] = o[i][dt][2] = o[i][dt][3] = 0.0f;
    }
#if ${NAME}_MMA == 2
    // The FlashAttention-2 schedule below with both products on wgmma: warpgroup wg (warps 4 wg
    // .. 4 wg + 3) owns rows 64 wg..; q stays in shared memory (the A operand of q k^T), p is
    // the register A operand of p v. A barrier orders the warps' cp.async writes, then
    // fence.proxy.async makes them visible to wgmma; each product is waited for before its
    // buffer is refilled.
    static_assert(HD % 64 == 0 && HD <= 128 && BN == 128 && WARPS % 4 == 0, "wgmma flash: head dim 64 / 128, 128-key chunks");
    RULES_DYN_SMEM(dsmem);
#if defined(__CUDA_ARCH__)
    {
        unsigned dyn;
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
        if (dyn < (unsigned)(${NAME}_SMEM)) __trap();
    }
    unsigned short* const sQ = reinterpret_cast<unsigned short*>(dsmem + ((1024 - (flash_smem_u32(dsmem) & 1023)) & 1023));
#else
    unsigned short* const sQ = reinterpret_cast<unsigned short*>(dsmem + ((1024 - ((unsigned long long)dsmem & 1023)) & 1023));
#endif
    unsigned short* const sK = sQ + BM * HD;
    unsigned short* const sV = sK + BN * HD;
    constexpr int CH = HD / 8, NTH = 32 * WARPS;
    const int d32 = (int)D;
    const int wg = warp >> 2;
    flash_stage_swz<BM, CH, NTH>(sQ, qb, m0, (int)Sq, d32, D, vec);
#if ${NAME}_STAGES > 2 && ${NAME}_OVERLAP
    // FlashAttention-3's intra-warpgroup overlap over a ring of STAGES (k, v) chunk pairs: while
    // p V(c + 1) runs on the tensor cores, the softmax of chunk c (whose q K(c)^T was issued just
    // before it and waited for alone) runs on the CUDA cores; o is rescaled only once p V(c + 1)
    // is done (o_c = (o_{c+1} + p_{c+1} V_{c+1}) * corr_c). Chunk c + 1's pair is freed after
    // p V(c + 1), in chunk c's iteration, and refilled there with chunk c + 1 - STAGES: one
    // cp.async group per chunk in order, so wait_group<STAGES - 2> means "chunk c is in" and a
    // chunk's loads have one iteration to land.
    constexpr int NS = ${NAME}_STAGES;
    static_assert(HD == 64, "the overlapped wgmma form: head dim 64 (registers)");
    #pragma unroll
    for (int j = 0; j < NS; ++j) {
        const int cj = ntiles - 1 - j;
        if (cj >= 0) {
            flash_stage_swz<BN, CH, NTH>(sK + (cj % NS) * 2 * BN * HD, kb, cj * BN, kend, d32, D, vec);
            flash_stage_swz<BN, CH, NTH>(sK + (cj % NS) * 2 * BN * HD + BN * HD, vb, cj * BN, kend, d32, D, vec);
        }
        flash_cp_commit();
    }
    unsigned pa[BN / 16][4];  // p of the chunk before (c + 1), the register A operand of its p v
    // q K(c)^T, waited for alone (a p v may still run), then the softmax into packed p (pn); the
    // factor o must take once that p v is done goes to corr
    auto scores = [&](int c, float (&corr)[2], float (&x)[NT][4], bool with_pv) {
        const int c0 = c * BN;
        const unsigned short* const kc = sK + (c % NS) * 2 * BN * HD;
        float s[NT][4];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        const unsigned short* const vp = sK + ((c + 1) % NS) * 2 * BN * HD + BN * HD;
#if defined(__CUDA_ARCH__)
        // every descriptor before the fence: registers a wgmma reads must not be written
        // between a group's issue and its wait (C7513 serializes every wgmma otherwise)
        unsigned long long dq[HD / 16], dk[HD / 16], dv[BN / 16];
        #pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            dq[kk] = flash_desc(sQ + (kk >> 2) * BM * 64 + wg * 64 * 64 + (kk & 3) * 16, 16, 1024);
            dk[kk] = flash_desc(kc + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024);
            asm volatile("" : "+l"(dq[kk]), "+l"(dk[kk]));
        }
        #pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            dv[kk] = flash_desc(vp + 16 * kk * 64, BN * 128, 1024);
            asm volatile("" : "+l"(dv[kk]));
        }
#endif
        flash_pin(s);
        flash_pin(o[0]);
        flash_pin(pa);
        flash_wg_fence();
        #pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
#if defined(__CUDA_ARCH__)
            flash_wg_qk_d(s, dq[kk], dk[kk]);
#else
            flash_wg_qk(s, sQ + (kk >> 2) * BM * 64 + wg * 64 * 64, kc + (kk >> 2) * BN * 64, (kk & 3) * 16);
#endif
        }
        flash_wg_commit();
        if (with_pv) {  // a compile-time constant at both calls: no branch between the two groups
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
#if defined(__CUDA_ARCH__)
                flash_wg_pv_d<DT>(o[0], pa[kk], dv[kk]);
#else
                flash_wg_pv<DT, BN>(o[0], pa[kk], vp, 16 * kk);
#endif
            }
            flash_wg_commit();
            flash_wg_wait<1>();  // q K(c)^T done; p V(c + 1) may still run
        } else {
            flash_wg_wait<0>();
        }
        flash_copy(x, s);
        const bool mask = c0 + BN > Sk || (causal && c0 + BN - 1 > wfirst);
        flash_softmax<NT, DT, true>(x, m[0], l[0], o[0], scale_log2, mask, r0, c0, (int)Sk, causal, (int)off, corr);
    };
    // p packed to bf16 pairs only once the p v reading pa is done: ptxas gives the packed values
    // pa's registers, and writing them while that group runs serializes every wgmma (C7513)
    if (ntiles > 0) {  // the first chunk (n - 1): no p v before it; o is still zero
        flash_cp_wait<NS - 2>();
        flash_proxy_fence();
        __syncthreads();  // its k and v (and q) in for every thread
        float corr[2], x[NT][4];
        scores(ntiles - 1, corr, x, false);
        flash_pack_p(pa, x);
    }
    for (int c = ntiles - 2; c >= 0; --c) {
        flash_cp_wait<NS - 2>();
        flash_proxy_fence();
        __syncthreads();  // chunk c's k and v in for every thread
        float corr[2], x[NT][4];
        scores(c, corr, x, true);
        flash_wg_wait<0>();  // p V(c + 1) done: o may be rescaled, pa reused
        flash_pin(o[0]);
        flash_pin(pa);
        #pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
            o[0][dt][0] *= corr[0]; o[0][dt][1] *= corr[0]; o[0][dt][2] *= corr[1]; o[0][dt][3] *= corr[1];
        }
        flash_pack_p(pa, x);
        __syncthreads();  // every warpgroup done with chunk c + 1's pair
        const int cn = c + 1 - NS;  // the next chunk not yet loaded: its pair is (c + 1)'s
        if (cn >= 0) {
            flash_stage_swz<BN, CH, NTH>(sK + (cn % NS) * 2 * BN * HD, kb, cn * BN, kend, d32, D, vec);
            flash_stage_swz<BN, CH, NTH>(sK + (cn % NS) * 2 * BN * HD + BN * HD, vb, cn * BN, kend, d32, D, vec);
        }
        flash_cp_commit();
    }
    if (ntiles > 0) {  // the last chunk's p v
        flash_pin(o[0]);
        flash_pin(pa);
        flash_wg_fence();
        #pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) flash_wg_pv<DT, BN>(o[0], pa[kk], sK + BN * HD, 16 * kk);
        flash_wg_commit_wait();
    }
#elif ${NAME}_STAGES > 1
    // A ring of STAGES (k, v) chunk pairs: chunk c lives in pair c % STAGES, its loads one
    // cp.async group issued STAGES - 1 chunks before its use (a group is committed every chunk,
    // empty past the first, so wait_group<STAGES - 1> always means "chunk c is in"); a barrier
    // after p v frees the pair for chunk c - STAGES.
    constexpr int NS = ${NAME}_STAGES;
    #pragma unroll
    for (int j = 0; j < NS; ++j) {
        const int cj = ntiles - 1 - j;
        if (cj >= 0) {
            flash_stage_swz<BN, CH, NTH>(sK + (cj % NS) * 2 * BN * HD, kb, cj * BN, kend, d32, D, vec);
            flash_stage_swz<BN, CH, NTH>(sK + (cj % NS) * 2 * BN * HD + BN * HD, vb, cj * BN, kend, d32, D, vec);
        }
        flash_cp_commit();
    }
    for (int c = ntiles - 1; c >= 0; --c) {
        const int c0 = c * BN;
        const unsigned short* const kc = sK + (c % NS) * 2 * BN * HD;
        const unsigned short* const vc = kc + BN * HD;
        flash_cp_wait<NS - 1>();
        flash_proxy_fence();
        __syncthreads();  // chunk c's k and v (and q) in for every thread
        float s[NT][4];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        flash_wg_fence();
        #pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk)
            flash_wg_qk(s, sQ + (kk >> 2) * BM * 64 + wg * 64 * 64, kc + (kk >> 2) * BN * 64, (kk & 3) * 16);
        flash_wg_commit_wait();
        const bool mask = c0 + BN > Sk || (causal && c0 + BN - 1 > wfirst);
        flash_softmax<NT, DT>(s, m[0], l[0], o[0], scale_log2, mask, r0, c0, (int)Sk, causal, (int)off);
        {
            unsigned pa[BN / 16][4];  // packed before the fence (C7519: see the one-stage form)
            flash_pack_p(pa, s);
            flash_wg_fence();
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) flash_wg_pv<DT, BN>(o[0], pa[kk], vc, 16 * kk);
            flash_wg_commit_wait();
        }
        __syncthreads();  // every warpgroup done with chunk c's pair
        const int cn = c - NS;
        if (cn >= 0) {
            flash_stage_swz<BN, CH, NTH>(sK + (cn % NS) * 2 * BN * HD, kb, cn * BN, kend, d32, D, vec);
            flash_stage_swz<BN, CH, NTH>(sK + (cn % NS) * 2 * BN * HD + BN * HD, vb, cn * BN, kend, d32, D, vec);
        }
        flash_cp_commit();
    }
#else
    if (ntiles > 0) flash_stage_swz<BN, CH, NTH>(sK, kb, (ntiles - 1) * BN, kend, d32, D, vec);
    flash_cp_commit();
    for (int c = ntiles - 1; c >= 0; --c) {
        const int c0 = c * BN;
        flash_cp_wait<0>();
        flash_proxy_fence();
        __syncthreads();  // K(c) (and q) in for every thread; every warpgroup done with V(c + 1)
        flash_stage_swz<BN, CH, NTH>(sV, vb, c0, kend, d32, D, vec);
        flash_cp_commit();
        // no per-warpgroup skip of chunks past its last row (the mask zeroes their weights):
        // ptxas serializes wgmma issued under a branch it cannot prove uniform (C7519)
        float s[NT][4];
        #pragma unroll
        for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        {
            flash_wg_fence();
            #pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk)
                flash_wg_qk(s, sQ + (kk >> 2) * BM * 64 + wg * 64 * 64, sK + (kk >> 2) * BN * 64, (kk & 3) * 16);
            flash_wg_commit_wait();
            const bool mask = c0 + BN > Sk || (causal && c0 + BN - 1 > wfirst);
            flash_softmax<NT, DT>(s, m[0], l[0], o[0], scale_log2, mask, r0, c0, (int)Sk, causal, (int)off);
        }
        flash_cp_wait<0>();
        flash_proxy_fence();
        __syncthreads();  // V(c) in for every thread; every warpgroup done with K(c)
        if (c > 0) flash_stage_swz<BN, CH, NTH>(sK, kb, c0 - BN, kend, d32, D, vec);
        flash_cp_commit();
        {
            // every p fragment packed before the fence: a register written between two wgmma
            // makes ptxas insert a warpgroup.arrive before the next (C7519)
            unsigned pa[BN / 16][4];
            flash_pack_p(pa, s);
            flash_wg_fence();
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) flash_wg_pv<DT, BN>(o[0], pa[kk], sV, 16 * kk);
            flash_wg_commit_wait();
        }
    }
#endif
    flash_cp_wait<0>();
#elif ${NAME}_MMA
    // FlashAttention-2's schedule over one K and one V buffer of BN keys each (dynamic shared
    // memory, ${NAME}_SMEM bytes): K(c) is in when chunk c starts; V(c) loads during q K(c)^T
    // and the softmax, K(c - 1) during p V(c); two barriers per chunk. q's fragments stay in
    // registers (QREG) or are reloaded from shared memory per 16 columns where they would push
    // the registers past 255; q is staged in V's buffer when it is in registers and fits there.
    constexpr bool QREG = ${NAME}_QREG, QINV = ${NAME}_QINV;
    RULES_DYN_SMEM(dsmem);
#if defined(__CUDA_ARCH__)
    {  // the launch's dynamic shared memory is the candidate's copy of _SMEM: a drift traps here
        unsigned dyn;
        asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
        if (dyn < (unsigned)(${NAME}_SMEM)) __trap();
    }
#endif
    unsigned short* const sK = reinterpret_cast<unsigned short*>(dsmem);
    unsigned short* const sV = sK + BN * ST;
    unsigned short* const sQ = QINV ? sV : sV + BN * ST;
    constexpr int CH = HD / 8;  // 16-byte chunks per row
    const int d32 = (int)D;
    // rows [r, r + N) of src (a [len, D] matrix) -> dst rows, zeros past len / D. N is a
    // compile-time row count and the thread's 16-byte chunks are c = threadIdx.x + k * 32 WARPS
    // (row c / CH, column (c % CH) * 8): where the threads span whole rows (32 WARPS a multiple
    // of CH) chunk k is row ti + k * RS of the thread's column tj, so the copy of a piece wholly
    // inside the matrix (every piece of a long sequence but the last) is one 64-bit address and
    // one 32-bit shared address with constant offsets, no bound checks.
    constexpr int NTH = 32 * WARPS;
    constexpr bool SPAN = NTH % CH == 0;
    constexpr int RS = SPAN ? NTH / CH : 1;
    const int ti = (int)threadIdx.x / CH, tj = ((int)threadIdx.x % CH) * 8;
    auto stage = [&](unsigned short* dst, const unsigned short* src, int r, auto rows, int len) {
        constexpr int N = decltype(rows)::value, ITERS = (N * CH + NTH - 1) / NTH;
        if (vec) {
            const unsigned short* base = src + (long long)r * D;
            if (SPAN && r + N <= len && d32 == HD) {
                const flash_sp sd = flash_sp_of(dst + ti * ST + tj);
                const unsigned short* gs = base + ti * HD + tj;
                #pragma unroll (ITERS < 8 ? ITERS : 8)  // more (head dim 256, 2 warps: 32) spilled addresses
                for (int k = 0; k < ITERS; ++k) {
                    if ((N * CH) % NTH != 0 && ti + k * RS >= N) break;
                    flash_cp16(sd + k * RS * ST, gs + k * RS * HD);
                }
            } else {
                #pragma unroll (ITERS < 8 ? ITERS : 8)
                for (int k = 0; k < ITERS; ++k) {
                    const int c = (int)threadIdx.x + k * NTH;
                    if ((N * CH) % NTH != 0 && c >= N * CH) break;
                    const int i = c / CH, j = (c % CH) * 8;
                    const bool ok = r + i < len && j < d32;
                    flash_cp16(flash_sp_of(dst + i * ST + j), ok ? base + i * d32 + j : src, ok);
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
    // the lane's ldmatrix rows: q (A, m-tile 0), k (B, not transposed), v (B, transposed)
    const flash_sp qrow = flash_sp_of(sQ + (warp * ROWS + lr + (lj & 1) * 8) * ST + (lj >> 1) * 8);
    const flash_sp krow = flash_sp_of(sK + (lr + (lj >> 1) * 8) * ST + (lj & 1) * 8);
    const flash_sp vrow = flash_sp_of(sV + (lr + (lj & 1) * 8) * ST + (lj >> 1) * 8);
    stage(sQ, qb, m0, flash_rows<BM>{}, (int)Sq);
    flash_cp_commit();
    if (ntiles > 0) stage(sK, kb, (ntiles - 1) * BN, flash_rows<BN>{}, kend);
    flash_cp_commit();
    flash_cp_wait<1>();  // q in (the last chunk's keys may still be in flight)
    __syncthreads();
    unsigned qf[QREG ? MTL : 1][QREG ? HD / 16 : 1][4];
    if (QREG) {
        #pragma unroll
        for (int i = 0; i < (QREG ? MTL : 0); ++i) {
            #pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk) flash_ldsm_x4<false>(qf[QREG ? i : 0][QREG ? kk : 0], qrow + i * 16 * ST + kk * 16);
        }
    }  // the loop's first barrier orders these reads before V's first load overwrites q (QINV)
    // chunks run from the last (the diagonal when causal) down to the first, as FlashAttention
    for (int c = ntiles - 1; c >= 0; --c) {
        const int c0 = c * BN;
        flash_cp_wait<0>();
        __syncthreads();  // K(c) in for every thread; every warp done with V(c + 1)
        stage(sV, vb, c0, flash_rows<BN>{}, kend);
        flash_cp_commit();
        const bool active = !causal || c0 <= wlast;  // else every key of the chunk is masked for the warp
        float s[MTL][NT][4];
        #pragma unroll
        for (int i = 0; i < MTL; ++i) {
            #pragma unroll
            for (int nt = 0; nt < NT; ++nt) s[i][nt][0] = s[i][nt][1] = s[i][nt][2] = s[i][nt][3] = 0.0f;
        }
        if (active) {
            // q from registers: unrolled (its fragments are indexed by kk); from shared memory
            // (head dim over 128): two steps at a time, which keeps ptxas under 255 registers
            #pragma unroll (QREG ? HD / 16 : 2)
            for (int kk = 0; kk < HD / 16; ++kk) {
                unsigned qa[QREG ? 1 : MTL][4];
                if (!QREG) {
                    #pragma unroll
                    for (int i = 0; i < MTL; ++i) flash_ldsm_x4<false>(qa[QREG ? 0 : i], qrow + i * 16 * ST + kk * 16);
                }
                #pragma unroll
                for (int np = 0; np < BN / 16; ++np) {
                    unsigned b[4];
                    flash_ldsm_x4<false>(b, krow + np * 16 * ST + kk * 16);
                    #pragma unroll
                    for (int i = 0; i < MTL; ++i) {
                        const unsigned (&a)[4] = QREG ? qf[QREG ? i : 0][QREG ? kk : 0] : qa[QREG ? 0 : i];
                        flash_mma(s[i][2 * np], a, b[0], b[1]);
                        flash_mma(s[i][2 * np + 1], a, b[2], b[3]);
                    }
                }
            }
            const bool mask = c0 + BN > Sk || (causal && c0 + BN - 1 > wfirst);
            #pragma unroll
            for (int i = 0; i < MTL; ++i)
                flash_softmax<NT, DTL>(s[i], m[i], l[i], o[i], scale_log2, mask, r0 + 16 * i, c0, (int)Sk, causal, (int)off);
        }
        flash_cp_wait<0>();
        __syncthreads();  // V(c) in for every thread; every warp done with K(c)
        if (c > 0) stage(sK, kb, c0 - BN, flash_rows<BN>{}, kend);
        flash_cp_commit();
        if (active) {
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
                unsigned pa[MTL][4];
                #pragma unroll
                for (int i = 0; i < MTL; ++i) {
                    pa[i][0] = flash_pack_bf16(s[i][2 * kk][0], s[i][2 * kk][1]);
                    pa[i][1] = flash_pack_bf16(s[i][2 * kk][2], s[i][2 * kk][3]);
                    pa[i][2] = flash_pack_bf16(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
                    pa[i][3] = flash_pack_bf16(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
                }
                #pragma unroll
                for (int dp = 0; dp < DT / 2; ++dp) {
                    unsigned b[4];
                    flash_ldsm_x4<true>(b, vrow + kk * 16 * ST + dp * 16);
                    #pragma unroll
                    for (int i = 0; i < MTL; ++i) {
                        flash_mma(o[i][2 * dp], pa[i], b[0], b[1]);
                        flash_mma(o[i][2 * dp + 1], pa[i], b[2], b[3]);
                    }
                }
                if constexpr (${NAME}_LSUM) {  // the row sums: p times a column of ones (bf16 1.0 pairs)
                    #pragma unroll
                    for (int i = 0; i < MTL; ++i) flash_mma(o[i][DTL - 1], pa[i], 0x3f803f80u, 0x3f803f80u);
                }
            }
        }
    }
    flash_cp_wait<0>();
#else
    static_assert((BM + BN) * ST * 4 <= 48 * 1024, "flash tiles exceed 48 KB of shared memory");
    static_assert(MTL == 1, "fp32: one 16-row m-tile per warp");
    float (&o1)[DT][4] = o[0];
    float (&m1)[2] = m[0];
    float (&l1)[2] = l[0];
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
        flash_softmax<NT, DT>(s, m1, l1, o1, scale_log2, mask, r0, (int)n0, (int)Sk, causal, (int)off);
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
                    o1[dt][0] = fmaf(p00, a0, fmaf(p01, b0, o1[dt][0]));
                    o1[dt][1] = fmaf(p00, a1, fmaf(p01, b1, o1[dt][1]));
                    o1[dt][2] = fmaf(p10, a0, fmaf(p11, b0, o1[dt][2]));
                    o1[dt][3] = fmaf(p10, a1, fmaf(p11, b1, o1[dt][3]));
                }
            }
        }
    }
#endif
    #pragma unroll
    for (int i = 0; i < MTL; ++i) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            float sum;
            if constexpr (${NAME}_LSUM) {
                sum = o[i][DTL - 1][2 * h];  // the whole row's sum in every lane (l is left unused)
            } else {
                sum = l[i][h];
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            }
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;  // a row with every key masked: 0
            const long long row = r0 + 16 * i + 8 * h;
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
}
