#!/usr/bin/env bash
# Issue 13 on one H200, one command (about 6.5 minutes; DECODE_BUDGET_S / TESTS_S stretch it):
#   scripts/decode_gpu.py: the decode seeds evaluated and recorded, each projection kernel beside
#   cuBLAS at all three models' shapes (% of copy bandwidth), the deploy bench (fused path with
#   and without PDL, the old tuned path, eager, torch.compile) with the fp32 parity contract and
#   the fused path's profile; then the fused-path GPU tests (parity for all three model layouts).
# Everything lands in $OUT (default ./gpu-out), at most 8 files:
#   decode_gpu.log (the tables), evals.jsonl, sweep.json, bench.json, pytest_fused.txt, machine.txt
set -u
OUT=${OUT:-$PWD/gpu-out}
export OUT
mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
nvidia-smi --query-gpu=index,name,driver_version,clocks.sm,clocks.mem --format=csv,noheader > "$OUT/machine.txt" 2>&1
export DECODE_BUDGET_S=${DECODE_BUDGET_S:-330}
timeout $(( DECODE_BUDGET_S + 90 )) python3 scripts/decode_gpu.py 2> >(tail -c 20000 >> "$OUT/decode_gpu.log")
echo "decode_gpu.py rc=$?" | tee -a "$OUT/decode_gpu.log"
timeout "${TESTS_S:-75}" python3 -m pytest -p no:cacheprovider -q -rfEs -o console_output_style=classic -m gpu -x \
  tests/deploy/test_step_io_gpu.py tests/deploy/test_fused_gpu.py > "$OUT/pytest_fused.txt" 2>&1
echo "pytest rc=$?" >> "$OUT/pytest_fused.txt"
if [ -n "${ENGINE_TESTS:-}" ]; then  # the engine's GPU tests (the fused slots resolved from an archive): minutes more
  timeout "${ENGINE_S:-240}" python3 -m pytest -p no:cacheprovider -q -rfEs -m gpu tests/deploy/test_engine_gpu.py \
    >> "$OUT/pytest_fused.txt" 2>&1
  echo "engine pytest rc=$?" >> "$OUT/pytest_fused.txt"
fi
tail -3 "$OUT/pytest_fused.txt"
