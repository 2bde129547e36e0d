#!/usr/bin/env bash
# Nsight Compute on one kernel per input line (run on the GPU machine, from the repo root):
#   task|variant|grid   a rules kernel (scripts/rules_sweep.py's variant and tunables)
#   task|compile|       the first Inductor (Triton) kernel of the task's torch.compile baseline
#   task|eager|REGEX     the eager reference's kernel matching REGEX (cuBLAS, cuDNN, PyTorch's own),
#                        its fourth call (scripts/ncu_compile.py --eager)
#   task|seed:NAME|REGEX JSON  seed NAME's kernel matching REGEX at the setting JSON (default {}),
#                        its second timed call (scripts/seed_run.py; NCU_SKIP counts from its check call)
# Each report goes to $OUT/ncu_N.txt; a digest of each is printed. NCU_EXTRA: more ncu arguments,
# e.g. the stall reasons: NCU_EXTRA='--metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
# NCU_SKIP: kernels to skip before the one profiled (default 3: the second call's second kernel
# of a two-kernel forward; 2 for its first).
set -u
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
SECTIONS="--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats ${NCU_EXTRA:-}"
i=0
while IFS='|' read -r task variant grid; do
  [ -n "$task" ] || continue
  i=$((i + 1))
  echo "=== $task $variant $grid"
  if [ "$variant" = eager ]; then
    "$NCU" --clock-control none $SECTIONS -k "regex:$grid" -s 3 -c 1 \
      python3 scripts/ncu_compile.py "$task" --eager > "${OUT:-/tmp}/ncu_$i.txt" 2>&1
  elif [ "${variant#seed:}" != "$variant" ]; then
    read -r regex params <<< "$grid"
    "$NCU" --clock-control none $SECTIONS -k "regex:$regex" -s "${NCU_SKIP:-2}" -c 1 \
      python3 scripts/seed_run.py "$task" "${variant#seed:}" "${params:-{\}}" > "${OUT:-/tmp}/ncu_$i.txt" 2>&1
  elif [ "$variant" = compile ]; then
    TORCH_LOGS=output_code "$NCU" --clock-control none $SECTIONS -k regex:triton -s 3 -c 1 \
      python3 scripts/ncu_compile.py "$task" \
      > "${OUT:-/tmp}/ncu_$i.txt" 2>&1
  else
    "$NCU" --clock-control none $SECTIONS -k regex:rules_ -s "${NCU_SKIP:-3}" -c 1 \
      python3 scripts/rules_sweep.py "$task" --variant "$variant" --grid $grid --no-baselines --calls 2 \
      > "${OUT:-/tmp}/ncu_$i.txt" 2>&1
  fi
  if grep -q "==ERROR==.*metric" "${OUT:-/tmp}/ncu_$i.txt" && [ -n "${NCU_EXTRA:-}" ]; then
    echo "(a metric of NCU_EXTRA is unknown to this ncu: the row again without NCU_EXTRA)"
    grep -m 3 "==ERROR==" "${OUT:-/tmp}/ncu_$i.txt"
    mkdir -p "${OUT:-/tmp}/retry_$i"
    NCU_EXTRA= OUT="${OUT:-/tmp}/retry_$i" NCU_SKIP="${NCU_SKIP:-}" bash "$0" <<< "$task|$variant|$grid" | sed 1d
    continue
  fi
  grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|L2 Hit|L1/TEX Hit|Achieved Occupancy|Theoretical Occupancy|Registers Per|Shared Memory Configuration Size|Dynamic Shared|Static Shared|Warp Cycles Per Issued|Grid Size|Block Size|Stall|stall|Issue Slots Busy|Executed Ipc A|Executed Instructions  |L2 Cache Throughput|Mem Busy|Max Bandwidth|Compute \\(SM\\) Throughput|pipe_|inst_executed_pipe|warps_issue_stalled" "${OUT:-/tmp}/ncu_$i.txt" | grep -v "^    ---" | head -${NCU_LINES:-60}
done
