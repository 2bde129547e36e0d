#!/usr/bin/env bash
# Issue 13: Nsight Compute rows for every kernel of one fused decode step (Llama-3.2-1B bf16 batch 1
# unless SWEEP_MODEL says otherwise), run on the GPU machine from the repository root:
#   OUT=out bash scripts/decode_ncu.sh
# Each kernel runs alone under ncu (no overlap with its neighbours), so the rows say what each
# kernel costs by itself: duration, DRAM bytes and throughput, registers, achieved occupancy.
# The digest (scripts/decode_ncu_digest.py) sums them per kernel name and per step against the
# copy-bandwidth time of the same bytes. $OUT/decode_ncu.csv is the raw table.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
METRICS=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,launch__grid_size,launch__block_size,sm__warps_active.avg.pct_of_peak_sustained_active
SWEEP_PHASES=ncu SWEEP_PDL=${SWEEP_PDL:-1} "$NCU" --profile-from-start off --clock-control none --csv \
  --metrics "$METRICS" python3 scripts/decode_step_sweep.py > "$OUT/decode_ncu.csv" 2> "$OUT/decode_ncu.err"
echo "ncu rc=$?"
python3 scripts/decode_ncu_digest.py "$OUT/decode_ncu.csv" ${COPY_GBPS:+--copy-gbps "$COPY_GBPS"}
