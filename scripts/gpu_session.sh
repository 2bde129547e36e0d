#!/usr/bin/env bash
# One lease, everything a session must show on the GPU (from the repository root, on a machine
# with two GPUs; with one, the halves run one after the other):
#   GPU 0: the trust tests (red team with the static check on and off, honest styles, the
#          winner gate's compute-sanitizer time), one JSON line per red-team evaluation;
#   GPU 1: which sandbox layer, if any, keeps CUDA from starting (scripts/sandbox_probe.py);
#          the runtime and evaluator GPU tests; the rules kernels over the suite family by
#          family (scripts/rules_sweep.py, the first two variants at their defaults, beside eager
#          and torch.compile), each family followed by the same sweep of an older checkout
#          (BEFORE=path, first variants), so both see the same machine; a grid of tunables
#          (GRID_TASKS x GRID); then the deploy and export GPU tests with the time left.
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
FAMILIES="softmax normalization loss reduction activation scan decode gemm conv"

trust() {
  export CUDA_VISIBLE_DEVICES=0
  timeout "${TRUST_S:-450}" $PYTEST -m gpu -s tests/adversarial tests/gpu/test_trust.py \
    tests/candidates > "$OUT/pytest_trust.txt" 2>&1
  echo "trust rc=$?" >> "$OUT/pytest_trust.txt"
}

kernels() {
  export CUDA_VISIBLE_DEVICES=$SECOND
  {
    echo "== sandbox probe"; timeout 60 python3 scripts/sandbox_probe.py
    echo "== runtime and evaluator GPU tests"
    timeout "${TESTS_S:-90}" $PYTEST -m gpu tests/gpu/test_runtime.py tests/gpu/test_evaluator.py 2>&1 | tail -15
  } > "$OUT/probe_and_tests.txt" 2>&1
  [ -n "${BEFORE:-}" ] && cp scripts/rules_sweep.py "$BEFORE/scripts/rules_sweep.py"  # it imports its own checkout
  local end=$(( SECONDS + ${SWEEP_S:-170} ))
  for f in $FAMILIES; do
    [ $SECONDS -lt $end ] || break
    [ -d "kernels/tasks/$f" ] && timeout $(( end - SECONDS + 5 )) python3 scripts/rules_sweep.py "kernels/tasks/$f" \
      --calls 15 --variants 2 >> "$OUT/sweep_after.txt" 2>&1
    [ -n "${BEFORE:-}" ] && [ -d "$BEFORE/kernels/tasks/$f" ] && [ $SECONDS -lt $end ] && \
      (cd "$BEFORE" && timeout 60 python3 scripts/rules_sweep.py "kernels/tasks/$f" --first --calls 15) \
      >> "$OUT/sweep_before.txt" 2>&1
  done
  [ -n "${GRID_TASKS:-}" ] && timeout "${GRID_S:-70}" python3 scripts/rules_sweep.py $GRID_TASKS --first --calls 15 \
    --grid ${GRID:-HINTS=0,1 OCC=0,100} >> "$OUT/sweep_after.txt" 2>&1
  timeout "${ENGINE_S:-150}" $PYTEST -m gpu tests/deploy tests/export > "$OUT/pytest_engine.txt" 2>&1
  echo "engine rc=$?" >> "$OUT/pytest_engine.txt"
}

if [ "$GPUS" -gt 1 ]; then
  trust & kernels & wait
else
  kernels; trust
fi
cat "$OUT/probe_and_tests.txt"
grep -E "[0-9]+ (passed|failed)" "$OUT"/pytest_*.txt
grep -cE "^\| " "$OUT"/sweep_*.txt
