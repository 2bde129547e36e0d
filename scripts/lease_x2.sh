#!/usr/bin/env bash
# One nvidia-h200-x2 lease, both GPUs busy, everything into $OUT. Between them the two GPUs run
# the whole GPU test suite (pytest -m gpu) and the decode step sweep:
#   GPU 0: the red-team and candidate-corpus tests (xdist: most of the suite's time)
#   GPU 1: scripts/decode_step_sweep.py, then every other GPU test (deploy serially)
# LEASE_S bounds the whole (default 560 s); SWEEP_S the sweep (default 300 s).
set -u
OUT=${OUT:-$PWD/gpu-out}; export OUT; mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
LEASE_S=${LEASE_S:-560}
SWEEP_S=${SWEEP_S:-300}
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader > "$OUT/machine.txt" 2>&1
( export CUDA_VISIBLE_DEVICES=0
  timeout "$LEASE_S" python3 -m pytest -p no:cacheprovider -q -rfE -m gpu -n 8 --timeout 300 --durations=10 \
    tests/adversarial tests/candidates > "$OUT/pytest_gpu0.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_gpu0.txt" ) &
( export CUDA_VISIBLE_DEVICES=1
  OLD_SEEDS=${OLD_SEEDS:-} SWEEP_BUDGET_S=$(( SWEEP_S - 20 )) timeout "$SWEEP_S" python3 scripts/decode_step_sweep.py \
    > "$OUT/sweep_stdout.txt" 2>&1
  echo "sweep rc=$?" >> "$OUT/step_sweep.log"
  timeout $(( LEASE_S - SWEEP_S )) python3 -m pytest -p no:cacheprovider -q -rfE -m gpu --timeout 250 --durations=10 \
    --ignore=tests/adversarial --ignore=tests/candidates ${GPU1_DESELECT:-} tests > "$OUT/pytest_gpu1.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_gpu1.txt" ) &
wait
tail -n 4 "$OUT"/pytest_*.txt; tail -n 30 "$OUT/step_sweep.log"
