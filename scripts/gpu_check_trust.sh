#!/usr/bin/env bash
# Trust, second round (issue 10), measured on a GPU machine. From the repository root:
#
#     source scripts/gpu_env.sh && bash scripts/gpu_check_trust.sh
#
# Writes everything under $OUT (default ./trust-out): the GPU test summary, the red-team
# table with the static check on and off, the honest-styles table with the guard-byte cost
# per evaluation and the compute-sanitizer time per winner, and the sandbox layers in effect.
set -u
OUT=${OUT:-$PWD/trust-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}

# compute-sanitizer: on PATH, else the CUDA toolkit (the evaluator looks there too).
if ! command -v compute-sanitizer >/dev/null 2>&1; then
  for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
    if [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ]; then export PATH="$d/bin:$PATH"; break; fi
  done
fi
{
  echo "== machine"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -2
  echo "compute-sanitizer: $(command -v compute-sanitizer || echo NOT FOUND)"
  compute-sanitizer --version 2>&1 | tail -1
  $PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])"
  $PY -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
  $PY -c "import triton; print('triton', triton.__version__)" 2>&1 | tail -1
  $PY -c "from autotuner.evaluator.isolation import landlock_abi; print('landlock ABI', landlock_abi())"
  uname -r; id
} 2>&1 | tee "$OUT/machine.txt"

echo "== GPU tests (trust)"
$PY -m pytest -m gpu tests/adversarial tests/candidates tests/gpu -q -p no:cacheprovider -rfEs \
    -o console_output_style=classic 2>&1 | tee "$OUT/pytest_gpu.txt" | tail -60
grep -E "^(FAILED|ERROR)|[0-9]+ (passed|failed)" "$OUT/pytest_gpu.txt" | tail -40 > "$OUT/pytest_summary.txt"

echo "== red team, static check on and off"
$PY scripts/redteam_table.py --both --json "$OUT/redteam.json" 2> "$OUT/redteam.log" | tee "$OUT/redteam.md"

echo "== honest styles: verdicts, guard-byte cost per evaluation, compute-sanitizer per winner"
$PY scripts/redteam_table.py --styles --sanitize --json "$OUT/styles.json" 2> "$OUT/styles.log" | tee "$OUT/styles.md"

echo "== summary"
{
  echo "GPU tests: $(grep -E '[0-9]+ (passed|failed)' "$OUT/pytest_gpu.txt" | tail -1)"
  tail -1 "$OUT/redteam.md"
  tail -3 "$OUT/styles.md"
  $PY - "$OUT/styles.json" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))
layers = {r.get("sandbox", "") for r in rows if r.get("sandbox")}
print("sandbox layers:", "; ".join(sorted(layers)) or "none reported")
PYEOF
} 2>&1 | tee "$OUT/summary.txt"
