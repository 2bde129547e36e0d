#!/usr/bin/env bash
# One nvidia-h200-x2 lease, two jobs at once (each pinned to one GPU), everything into $OUT:
#   GPU 0: the whole GPU test suite (pytest -m gpu; deploy tests serially, the rest with xdist)
#   GPU 1: scripts/decode_step_sweep.py, then the decode GPU tests
# LEASE_S bounds the whole (default 560 s).
set -u
OUT=${OUT:-$PWD/gpu-out}; export OUT; mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
LEASE_S=${LEASE_S:-560}
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$OUT/machine.txt" 2>&1
( export CUDA_VISIBLE_DEVICES=0
  timeout $(( LEASE_S - 200 )) python3 -m pytest -p no:cacheprovider -q -rfE -m gpu -n 6 --timeout 300 \
    --ignore=tests/deploy tests > "$OUT/pytest_gpu_all.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_gpu_all.txt"
  timeout 180 python3 -m pytest -p no:cacheprovider -q -rfE -m gpu --timeout 170 tests/deploy \
    > "$OUT/pytest_gpu_deploy.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_gpu_deploy.txt" ) &
( export CUDA_VISIBLE_DEVICES=1
  OLD_SEEDS=${OLD_SEEDS:-} SWEEP_BUDGET_S=$(( LEASE_S - 130 )) timeout $(( LEASE_S - 100 )) python3 scripts/decode_step_sweep.py \
    > "$OUT/sweep_stdout.txt" 2>&1
  echo "sweep rc=$?" >> "$OUT/step_sweep.log"
  timeout 90 python3 -m pytest -p no:cacheprovider -q -rfE -m gpu tests/unit/runtime/test_pdl_gpu.py \
    tests/deploy/test_fused_gpu.py > "$OUT/pytest_decode.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_decode.txt" ) &
wait
tail -n 3 "$OUT"/pytest_*.txt; tail -n 30 "$OUT/step_sweep.log"
