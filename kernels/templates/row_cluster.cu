// ---- row region ${NAME}_${MODE} (row_cluster.cu) -------------------------------------------
// Rows of D elements cached in shared memory, one pass over device memory (1 read + 1 write
// per element) for rows too long for registers. A row is split over the CLUSTER blocks of a
// thread-block cluster: block rank r caches elements [lo_, hi_) (chunk elements, a multiple of
// VEC) of every whole-row operand in dynamic shared memory (16-byte cp.async copies, all in
// flight at once, each thread reading back only the vectors it copied: no barrier). Every
// pass of every phase then reads shared memory only; a phase's partial states are merged
// across the block's warps (shared memory, in warp order) and across the cluster (each block
// reads every rank's block state through distributed shared memory, in rank order: the same
// result in every block, deterministic). The last pass writes the per-element outputs of the
// slice. Shared memory: ${SCRATCH} floats of merge scratch (two alternating sets of per-warp
// states, then the block states the cluster reads), then one slice per cached operand.
// Cluster barriers are split (arrive after reading the other blocks' states, wait before
// overwriting them), so a block runs ahead into its next pass while the others read.
// vec == 1: D % VEC == 0 and every row pointer is aligned for VEC-element accesses.
// PIPE 1 (a persistent grid, one cluster per resident cluster slot, rows strided over them):
// two buffers per slice; while a block computes and writes row r from one, the next row's
// slice is already copying into the other (cp.async groups, committed a row apart), so the
// loads overlap the merge, the barriers and the stores. The prologue starts the first row.
// At most 64 registers a thread (1024 / BLOCK blocks resident, or OCC's more): the data lives
// in shared memory, and several resident blocks overlap one's fill with another's passes.
extern "C" RULES_CLUSTER_ATTR __global__ void __launch_bounds__(BLOCK, RULES_MINB > 1024 / BLOCK ? RULES_MINB : 1024 / BLOCK)
${NAME}_${MODE}(${PARAMS}long long rows, long long D, ${EXTRA}long long chunk, int vec)
{
    constexpr int NT = BLOCK;
    constexpr int NWARP = BLOCK / 32;
    const int tid = (int)threadIdx.x;
    const int lane_ = tid & 31, warp_ = tid >> 5;
    const unsigned crank_ = rules_cluster_rank();
    const long long lo_ = (long long)crank_ * chunk;
    const long long hi_ = lo_ + chunk < D ? lo_ + chunk : D;
    RULES_DYN_SMEM(smem_);
    float* const wsc_ = reinterpret_cast<float*>(smem_);      // [2][NSTATE][NWARP]
    float* const csc_ = wsc_ + 2 * ${NSTATE} * NWARP;         // [NSTATE]
${SLICES}
    int cbuf_ = 0;
    bool pend_ = false;
    int pbuf_ = 0;  // PIPE: the slice buffer of this row (the other one fills with the next row)
    (void)lane_; (void)warp_; (void)csc_; (void)pbuf_;
    const long long rstep_ = (long long)(gridDim.x / CLUSTER);
${PROLOGUE}
    for (long long row = (long long)(blockIdx.x / CLUSTER); row < rows; row += rstep_) {
${BODY}
    }
    if (pend_) rules_cluster_wait();  // no block leaves while another may read its states
}
