// ---- row region ${NAME}_${MODE} (row.cu) ---------------------------------------------------
// Rows of D elements (the trailing dims); NT threads per row: a block (NT == BLOCK, grid-stride
// over rows) or a warp (NT == 32, BLOCK / 32 rows per block, no block-wide barrier). Each
// phase is one pass over the row that feeds one or more reductions (fp32 accumulators, merged
// by warp shuffles in a fixed order: deterministic); the last pass writes the per-element
// outputs. Streaming modes re-read the row each pass (the second read mostly hits L2);
// cached modes keep it in registers (ITEMS x VEC values per thread) when D <= NT*ITEMS*VEC.
// vec == 1: D % VEC == 0 and every row pointer is aligned for VEC-element accesses.
extern "C" __global__ void __launch_bounds__(BLOCK, RULES_MINB)
${NAME}_${MODE}(${PARAMS}long long rows, long long D, ${EXTRA}int vec)
{
    constexpr int NT = ${NT};
    const int tid = ${TID};
    for (long long row = ${ROW0}; row < rows; row += ${RSTEP}) {
${BODY}
    }
}
