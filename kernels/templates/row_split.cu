// ---- row region ${NAME}_${MODE} (row_split.cu) ---------------------------------------------
// A few long rows, each split across S blocks: blockIdx.x picks the row (grid-stride), blockIdx.y
// the chunk [lo_, hi_) of it (chunk elements, a multiple of VEC, so vectors stay 16-byte
// aligned). Rows vary fastest, so the blocks resident together read the same chunk of operands
// shared by every row (LayerNorm's weights over the row): read once from DRAM, then from L2. Kernel splitP (one per phase P of the row's reductions)
// first merges the partial states of the earlier phases from the workspace (every warp merges
// the S partials the same way: lane l takes chunks l, l + 32, ..., then a fixed shuffle tree,
// so the result is deterministic and needs no barrier), streams its chunk once to fold phase
// P's reductions (and to write per-element outputs that need none), and writes its block's
// states to ws[(slot * rows + row) * S + s] (wsi for int64 argmax / argmin indices). Kernel
// splitf merges every phase and writes the row's outputs: per-element ones over its chunk
// (grid (rows, S)), per-row ones from chunk 0. Separate launches, no atomics or spin-waits:
// safe without co-residency and under CUDA graph replay.
extern "C" __global__ void __launch_bounds__(BLOCK, RULES_MINB)
${NAME}_${MODE}(${PARAMS}long long rows, long long D, ${EXTRA}long long S, long long chunk,
    float* __restrict__ ws, long long* __restrict__ wsi, int vec)
{
    constexpr int NT = BLOCK;
    const int tid = (int)threadIdx.x;
    const long long lane_ = (long long)(threadIdx.x & 31);
    const long long s_ = (long long)blockIdx.y;
    const long long lo_ = s_ * chunk;
    const long long hi_ = lo_ + chunk < D ? lo_ + chunk : D;
    (void)lane_; (void)hi_;
    for (long long row = (long long)blockIdx.x; row < rows; row += (long long)gridDim.x) {
${BODY}
    }
}
