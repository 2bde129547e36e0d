// ---- column region ${NAME}_${MODE} (col.cu) ------------------------------------------------
// The operand is [O, R, I] (outer, reduced, inner > 1): element j of column c = o * I + i lives
// at o * R * I + j * I + i. NTC threads across columns, NW along j: mode col (NTC == BLOCK,
// NW == 1: one thread per column, the block's barriers vanish) or colsplit (NTC == 32 lanes,
// NW == BLOCK / 32 warps splitting j, merged through shared memory at the same lane). Each
// thread owns VEC columns: VEC consecutive ones (16-byte accesses; vec == 1: I % VEC == 0 and
// aligned pointers) or, on the scalar path, columns NTC apart (each access still coalesced).
// The j loop is unrolled UNROLL times, the loads first (UNROLL x VEC independent loads in
// flight), with UNROLL independent fp32 accumulators per column folded in order at the end
// (deterministic). blockIdx.y picks one of S slices of j (S == 1 except for the partial pass
// of a split reduction, whose merge kernel finishes the columns).
extern "C" __global__ void __launch_bounds__(BLOCK, RULES_MINB)
${NAME}_${MODE}(${PARAMS}long long O, long long R, long long I, long long S, ${WS}int vec)
{
    constexpr int NTC = ${NTC};
    constexpr int NW = ${NW};
    const int tc = ${TC};
    const int tw = ${TW};
    const long long ncols = O * I;
    const long long RI = R * I;
    const long long jchunk = (R + S - 1) / S;
    const long long jbeg = (long long)blockIdx.y * jchunk;
    const long long jend = jbeg + jchunk < R ? jbeg + jchunk : R;
    for (long long cb = (long long)blockIdx.x * (NTC * VEC); cb < ncols; cb += (long long)gridDim.x * (NTC * VEC)) {
        long long c[VEC], base[VEC];
        bool live[VEC];
        RULES_LANES {
            c[u] = vec ? cb + (long long)tc * VEC + u : cb + (long long)u * NTC + tc;
            live[u] = c[u] < ncols;
            const long long o_ = live[u] ? c[u] / I : 0;
            base[u] = live[u] ? o_ * RI + (c[u] - o_ * I) : 0;
        }
${BODY}
    }
}
