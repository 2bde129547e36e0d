#!/usr/bin/env bash
# One lease, everything the trust issue and a kernel check must show on the GPU (from the
# repository root; on a machine with two GPUs the halves run side by side, else one after the
# other). Candidates are evaluated several at a time: these runs are for verdicts, not timings.
#   GPU 0: the GPU tests: trust (red team, honest styles, winner gate) with pytest-xdist, then
#          runtime / evaluator, then deploy / export;
#   GPU 1: the red-team table with the static check on and off, the honest-styles table with
#          the guard-byte cost and compute-sanitizer time per winner; then the rules kernels
#          of SWEEP_TASKS beside eager and torch.compile (scripts/rules_sweep.py).
# Everything lands in $OUT (default ./gpu-out): at most 8 files, the device tool's limit.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
source scripts/gpu_env.sh >/dev/null 2>&1
for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
  if [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ]; then export PATH="$PATH:$d/bin"; break; fi
done
{
  nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader
  python3 -c "import torch, cupy; print('torch', torch.__version__, 'cupy', cupy.__version__)"
  id; echo "== sandbox probe"; timeout 60 python3 scripts/sandbox_probe.py
} > "$OUT/machine.txt" 2>&1
GPUS=$(nvidia-smi -L | wc -l)
SECOND=$(( GPUS > 1 ? 1 : 0 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MAX_JOBS=${MAX_JOBS:-4}  # many evaluations at once: fewer threads each
PYTEST="python3 -m pytest -p no:cacheprovider -q -rfEs -o console_output_style=classic"
END=$(( SECONDS + ${TOTAL_S:-540} ))   # everything stops by then, so $OUT still comes back
left() { local l=$(( END - SECONDS - ${1:-0} )); echo $(( l > 10 ? l : 10 )); }

tests() {
  export CUDA_VISIBLE_DEVICES=0
  timeout "$(left 150)" $PYTEST -n "${TEST_JOBS:-6}" -m gpu tests/adversarial tests/gpu/test_trust.py \
    tests/candidates > "$OUT/pytest_trust.txt" 2>&1
  echo "trust rc=$?" >> "$OUT/pytest_trust.txt"
  {
    timeout "$(left 100)" $PYTEST -m gpu tests/gpu/test_runtime.py tests/gpu/test_evaluator.py
    echo "runtime/evaluator rc=$?"
    timeout "$(left 5)" $PYTEST -n 2 -m gpu tests/deploy tests/export
    echo "deploy/export rc=$?"
  } > "$OUT/pytest_other.txt" 2>&1
}

tables() {
  export CUDA_VISIBLE_DEVICES=$SECOND
  timeout "$(left 200)" python3 scripts/redteam_table.py --both --jobs "${TABLE_JOBS:-6}" \
    --json "$OUT/redteam.json" > "$OUT/redteam.md" 2> "$OUT/tables.log"
  echo "redteam rc=$?" >> "$OUT/tables.log"
  timeout "$(left 90)" python3 scripts/redteam_table.py --styles --sanitize --jobs "${STYLE_JOBS:-4}" \
    > "$OUT/styles.md" 2>> "$OUT/tables.log"
  echo "styles rc=$?" >> "$OUT/tables.log"
  [ -n "${SWEEP_TASKS:-}" ] && timeout "$(left 5)" python3 scripts/rules_sweep.py $SWEEP_TASKS \
    --calls 15 --variants "${SWEEP_VARIANTS:-2}" > "$OUT/sweep.txt" 2>&1
}

if [ "$GPUS" -gt 1 ]; then
  tests & tables & wait
else
  tables; tests
fi
grep -E "[0-9]+ (passed|failed)|rc=" "$OUT"/pytest_*.txt
tail -3 "$OUT/redteam.md" "$OUT/styles.md"
grep -cE "^\| " "$OUT/sweep.txt" 2>/dev/null
ls "$OUT"
