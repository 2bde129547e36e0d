#!/usr/bin/env bash
# The closing lease on nvidia-h200-x2, everything into $OUT:
#   GPU 0: scripts/decode_gpu.sh (the decode seeds evaluated and recorded by the evaluator, then
#          the deploy bench on Llama-3.2-1B against eager and torch.compile, parity, profile;
#          then Qwen / Granite while time remains)
#   GPU 1: the GPU tests outside tests/adversarial and tests/candidates (those ran on their own)
set -u
OUT=${OUT:-$PWD/gpu-out}; export OUT; mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
LEASE_S=${LEASE_S:-570}
( export CUDA_VISIBLE_DEVICES=0
  DECODE_PHASES=${DECODE_PHASES:-engine,llama,others} DECODE_BUDGET_S=$(( LEASE_S - 110 )) TESTS_S=1 \
    bash scripts/decode_gpu.sh > "$OUT/decode_stdout.txt" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout $(( LEASE_S - 10 )) python3 -m pytest -p no:cacheprovider -q -rfE -m gpu --timeout 400 --durations=12 \
    tests/unit/runtime/test_pdl_gpu.py tests/gpu tests/export tests/integration tests/deploy > "$OUT/pytest_gpu1.txt" 2>&1
  echo "rc=$?" >> "$OUT/pytest_gpu1.txt" ) &
wait
tail -n 5 "$OUT/pytest_gpu1.txt"; tail -n 60 "$OUT/decode_gpu.log"
