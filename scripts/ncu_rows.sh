#!/usr/bin/env bash
# Nsight Compute on one rules kernel per line of "task|variant|grid" (run on the GPU machine).
set -u
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
i=0
while IFS='|' read -r task variant grid; do
  [ -n "$task" ] || continue
  i=$((i + 1))
  echo "=== $task $variant $grid"
  "$NCU" --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats -k regex:rules_ -s 3 -c 1 \
    python3 scripts/rules_sweep.py "$task" --variant "$variant" --grid $grid --no-baselines --calls 2 \
    > "${OUT:-/tmp}/ncu_$i.txt" 2>&1
  grep -E "rules_|Duration|DRAM Throughput|Memory Throughput|L2 Hit|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit Reg|Warp Cycles Per Issued|Grid Size|Block Size|Stall" "${OUT:-/tmp}/ncu_$i.txt" | head -40
done
