#!/usr/bin/env bash
# One lease, everything a session must show on the GPU (from the repository root, on a machine
# with two GPUs; with one, both halves run on it one after the other):
#   GPU 0: the trust tests (red team with the static check on and off, honest styles, the
#          winner gate's compute-sanitizer time), one JSON line per red-team evaluation; then
#          the deploy and export GPU tests;
#   GPU 1: the rules kernels over the whole suite (scripts/rules_sweep.py: the first two
#          variants at their defaults, beside eager and torch.compile), then the runtime and
#          evaluator GPU tests.
# BEFORE=path/to/old/checkout adds the same sweep of an older rules proposer (first variants).
# Everything lands in $OUT (default ./gpu-out): at most 8 files, the device tool's limit.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
  if [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ]; then export PATH="$PATH:$d/bin"; break; fi
done
nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
GPUS=$(nvidia-smi -L | wc -l)
SECOND=$(( GPUS > 1 ? 1 : 0 ))
export AUTOTUNER_REDTEAM_LOG="$OUT/redteam.jsonl"
PYTEST="python3 -m pytest -p no:cacheprovider -q -rfEs -o console_output_style=classic"

trust() {
  export CUDA_VISIBLE_DEVICES=0
  timeout "${TRUST_S:-330}" $PYTEST -m gpu -s tests/adversarial tests/gpu/test_trust.py \
    tests/candidates > "$OUT/pytest_trust.txt" 2>&1
  echo "trust rc=$?" >> "$OUT/pytest_trust.txt"
  timeout "${ENGINE_S:-200}" $PYTEST -m gpu tests/engine tests/export > "$OUT/pytest_engine.txt" 2>&1
  echo "engine rc=$?" >> "$OUT/pytest_engine.txt"
}

kernels() {
  export CUDA_VISIBLE_DEVICES=$SECOND
  # memory-bound families first, so that a time limit cuts the GEMM / convolution tasks
  FAMILIES="softmax normalization loss reduction activation scan decode attention gemm conv"
  timeout "${SWEEP_S:-330}" python3 scripts/rules_sweep.py ${SUITE:-$(for f in $FAMILIES; do [ -d kernels/tasks/$f ] && echo kernels/tasks/$f; done)} \
    --calls 15 --variants 2 \
    > "$OUT/sweep_after.txt" 2>&1
  if [ -n "${BEFORE:-}" ]; then
    cp scripts/rules_sweep.py "$BEFORE/scripts/rules_sweep.py"  # it imports the checkout it sits in
    (cd "$BEFORE" && timeout "${BEFORE_S:-90}" python3 scripts/rules_sweep.py \
      $(for f in $FAMILIES; do [ -d kernels/tasks/$f ] && echo kernels/tasks/$f; done) --first \
      --calls 15 > "$OUT/sweep_before.txt" 2>&1)
  fi
  timeout "${TESTS_S:-110}" $PYTEST -m gpu tests/gpu/test_runtime.py tests/gpu/test_evaluator.py \
    > "$OUT/pytest_other.txt" 2>&1
  echo "other rc=$?" >> "$OUT/pytest_other.txt"
}

if [ "$GPUS" -gt 1 ]; then
  trust & kernels & wait
else
  kernels; trust
fi
grep -E "[0-9]+ (passed|failed)" "$OUT"/pytest_*.txt
grep -E "^# " "$OUT"/sweep_*.txt
