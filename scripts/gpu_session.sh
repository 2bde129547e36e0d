#!/usr/bin/env bash
# One lease, what a session must show on the GPU, from the repository root. Two lists of parts
# run side by side, one per GPU (one after the other on a one-GPU machine):
#
#   GPU0="trust tests" GPU1="tables styles sweep" bash scripts/gpu_session.sh     (the default)
#
# Parts (candidates are evaluated several at a time: these runs are for verdicts, not timings):
#   trust   the trust GPU tests (red team, honest styles, winner gate) under pytest-xdist
#           (TRUST_K: a pytest -k expression to run only some)
#   tests   every other GPU test (runtime, evaluator, unwatched, graph timing, deploy, export,
#           integration) but those marked slow, with the 20 slowest listed
#   slow    the slow ones (the engine with tuned slots, the exported package, the scripted-server
#           run, whose table lands in scripted_server.txt), a test file per worker; one command of its
#           own on a one-GPU lease
#   tables  the red-team table with the static check on and off (scripts/redteam_table.py)
#   styles  the honest-styles table: verdicts, guard-byte cost, compute-sanitizer time per winner
#   sweep   the rules kernels of SWEEP_TASKS beside eager and torch.compile (scripts/rules_sweep.py,
#           SWEEP_ARGS extra arguments)
#   engine  the engine's GPU test file alone, without xdist, its progress streamed (ENGINE_S caps it)
#   evalbench  bench evaluator on softmax's first rules candidate (one by one, settings sharing a
#           child, compiled ahead); EVALBENCH_PRELOADS="none cupy" adds a CuPy-preloaded fork server
#   decodeocc  scripts/decode_step_sweep.py's occ and final phases (co-residency of PDL successors)
#   suite   issue 12's table: `autotuner bench suite` with tuning on, starting no task in the command's last
#           SUITE_TAIL_S seconds (--start-within: the table prints, every task searched whole; SUITE_MINUTES: a --max-minutes budget;
#           it prints a table inside the command but cuts each task's search to a fair share of it: on the
#           H200, 2026-12-02, 8 minutes for 30 tasks left elu_wide, softmax_wide and both bf16 SDPA tasks one
#           candidate each), into SUITE_DB (default gpu-in/suite.db, unpacked first
#           from a carried gpu-in/suite.db.gz, so a table too long for one command resumes in the next:
#           the archive holds every result already earned); SUITE_ONLY a comma-separated --only filter;
#           report.md, progress.png, suite.json and suite.db.gz in $OUT. The eager / torch.compile
#           baselines the evaluator timed come back too (baselines.tgz) and a carried
#           gpu-in/baselines.tgz is unpacked first: with SUITE_DB on a fresh path that gives the
#           candidates-per-GPU-hour figure "with baselines cached" (issue 14) over several commands
#   extra   EXTRA_CMD, a command line of its own (its output in extra.txt)
# Everything lands in $OUT (default ./gpu-out): at most 8 files, the device tool's limit; the
# whole run stops by TOTAL_S seconds so that $OUT still comes back.
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
  id
} > "$OUT/machine.txt" 2>&1
GPUS=$(nvidia-smi -L | wc -l)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MAX_JOBS=${MAX_JOBS:-4}  # many evaluations at once: fewer threads each
PYTEST="python3 -m pytest -p no:cacheprovider -q -rfEs -o console_output_style=classic"
END=$(( SECONDS + ${TOTAL_S:-540} ))
left() { local l=$(( END - SECONDS - ${1:-0} )); echo $(( l > 10 ? l : 10 )); }

part_trust() {
  timeout "$(left 60)" $PYTEST -n "${TEST_JOBS:-6}" -m gpu ${TRUST_K:+-k "$TRUST_K"} tests/adversarial \
    tests/gpu/test_trust.py tests/candidates > "$OUT/pytest_trust.txt" 2>&1
  echo "trust rc=$?" >> "$OUT/pytest_trust.txt"
}
OTHER_TESTS="tests/unit/runtime/test_pdl_gpu.py tests/unit/evaluator tests/gpu --ignore=tests/gpu/test_trust.py tests/export tests/integration tests/deploy"
part_tests() {  # every GPU test outside the trust set but the slow ones (175 on the H200, 2026-12-01), the slowest listed
  timeout "$(left 5)" $PYTEST -n "${OTHER_JOBS:-6}" -m "gpu and not slow" --durations=20 $OTHER_TESTS \
    > "$OUT/pytest_other.txt" 2>&1
  echo "other GPU tests rc=$?" >> "$OUT/pytest_other.txt"
}
part_slow() {  # the slow ones (15, in four files): the engine's file alone first, then a file per worker
  # The engine's tuned-archive fixture evaluates Llama-sized candidates (8 GiB buffers); run beside the
  # export and deploy-bench files on one H200 it met out-of-memory and lost its rmsnorm kernel (2026-12-01).
  AUTOTUNER_TEST_REPORT_DIR=$OUT timeout "$(left 5)" $PYTEST -p no:xdist -m "gpu and slow" -vv -rP --timeout "$(left 45)" \
    --durations=10 tests/deploy/test_engine_gpu.py > "$OUT/pytest_slow.txt" 2>&1
  echo "slow GPU tests (engine file) rc=$?" >> "$OUT/pytest_slow.txt"
  AUTOTUNER_TEST_REPORT_DIR=$OUT timeout "$(left 5)" $PYTEST -n "${SLOW_JOBS:-3}" --dist loadfile -m "gpu and slow" -vv -rP --timeout "$(left 45)" --durations=20 $OTHER_TESTS \
    --ignore=tests/deploy/test_engine_gpu.py >> "$OUT/pytest_slow.txt" 2>&1
  echo "slow GPU tests (the other files) rc=$?" >> "$OUT/pytest_slow.txt"
}
part_tables() {
  timeout "$(left 60)" python3 scripts/redteam_table.py --both --jobs "${TABLE_JOBS:-6}" \
    > "$OUT/redteam.md" 2>> "$OUT/tables.log"
  echo "redteam rc=$?" >> "$OUT/tables.log"
}
part_styles() {
  timeout "$(left 5)" python3 scripts/redteam_table.py --styles --sanitize --jobs "${STYLE_JOBS:-6}" \
    > "$OUT/styles.md" 2>> "$OUT/tables.log"
  echo "styles rc=$?" >> "$OUT/tables.log"
}
part_sweep() {
  [ -n "${SWEEP_TASKS:-}" ] || { echo "sweep: SWEEP_TASKS is not set, skipped" >> "$OUT/sweep.txt"; return; }
  timeout "$(left 5)" python3 scripts/rules_sweep.py $SWEEP_TASKS --calls 15 ${SWEEP_ARGS:---variants 2} \
    >> "$OUT/sweep.txt" 2>&1
}
# The engine's GPU test file alone, streamed: fixture progress, slot and sanitizer times. HANG_DUMP_S
# dumps every thread's stack after that many seconds in one test; off by default: on the H200 a dump
# taken while torch.compile's worker threads ran ended the run with SIGSEGV (2026-12-01).
part_engine() {
  timeout "${ENGINE_S:-$(left 5)}" $PYTEST -p no:xdist -s -x --log-cli-level=INFO -o faulthandler_timeout="${HANG_DUMP_S:-0}" \
    -m gpu tests/deploy/test_engine_gpu.py tests/deploy/test_engine_cli_gpu.py > "$OUT/pytest_engine.txt" 2>&1
  echo "engine GPU tests rc=$?" >> "$OUT/pytest_engine.txt"
}
part_evalbench() {  # candidates per GPU-hour on softmax's first rules candidate, as the fork server is and with CuPy preloaded
  local cand=/tmp/gpu-session-softmax-cand.py
  timeout "$(left 5)" $PYTEST tests/unit/evaluator/test_sandbox.py > "$OUT/pytest_sandbox.txt" 2>&1  # the forked child, on a GPU
  python3 -c "from autotuner.tasks import load_task; from evolution.proposers.rules import translate; \
open('$cand', 'w').write(translate(load_task('kernels/tasks/softmax/softmax.py'), 1).proposals[0].source)"
  for preload in ${EVALBENCH_PRELOADS:-none}; do  # EVALBENCH_PRELOADS="none cupy" adds a CuPy-preloaded fork server
    [ "$preload" = none ] && preload=""
    echo "== AUTOTUNER_FORKSERVER_PRELOAD=$preload" >> "$OUT/evalbench.txt"
    AUTOTUNER_FORKSERVER_PRELOAD=$preload timeout "$(left 5)" python3 -m autotuner.cli.main bench evaluator \
      kernels/tasks/softmax/softmax.py "$cand" --repeats 5 >> "$OUT/evalbench.txt" 2>&1
    echo "evalbench rc=$?" >> "$OUT/evalbench.txt"
  done
}
part_decodeocc() {  # the co-residency test (OCC 2/3/4, PDL off / on) and the step with the current seeds
  SWEEP_PHASES=occ,final SWEEP_BUDGET_S=$(left 20) timeout "$(left 5)" python3 scripts/decode_step_sweep.py \
    > "$OUT/decodeocc.txt" 2>&1
  echo "decodeocc rc=$?" >> "$OUT/decodeocc.txt"
}
part_suite() {  # the whole suite's table with tuning on; resumes from a carried gpu-in/suite.db(.gz)
  # The archive outgrows the 16 MiB a returned file may have: it lives in gpu-in/ (kept on a warm machine
  # between commands) and comes back gzipped as $OUT/suite.db.gz; carry gpu-in to resume on a fresh one.
  local db=${SUITE_DB:-gpu-in/suite.db}
  mkdir -p "$(dirname "$db")"
  [ ! -f "$db" ] && [ -f gpu-in/suite.db.gz ] && gunzip -c gpu-in/suite.db.gz > "$db"
  local cache=${AUTOTUNER_CACHE_DIR:-$HOME/.cache/autotuner}
  mkdir -p "$cache"
  [ -f gpu-in/baselines.tgz ] && tar -xzf gpu-in/baselines.tgz -C "$cache"
  # No task starts after the command's time less SUITE_TAIL_S (the longest task's search: 155 s on the
  # H200, gate_up_silu_bf16, 2026-12-03), so the table and "where the time went" print before the
  # timeout; the timeout stays as the backstop
  local window=$(( $(left 40) - ${SUITE_TAIL_S:-180} ))
  [ "$window" -lt 60 ] && window=60
  timeout "$(left 40)" python3 -m autotuner.cli.main bench suite --db "sqlite:///$db" --warm-jobs 8 \
    --start-within "$(awk "BEGIN {print $window / 60}")" ${SUITE_MINUTES:+--max-minutes "$SUITE_MINUTES"} \
    ${SUITE_ONLY:+--only "$SUITE_ONLY"} --report "$OUT/report" --out "$OUT/suite.json" > "$OUT/suite.txt" 2>&1
  echo "suite rc=$?" >> "$OUT/suite.txt"
  python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('pragma wal_checkpoint(truncate)')" "$db"
  gzip -c "$db" > "$OUT/suite.db.gz"
  [ -d "$cache/baselines" ] && tar -czf "$OUT/baselines.tgz" -C "$cache" baselines
  tail -n 40 "$OUT/suite.txt"
}
part_extra() { timeout "$(left 5)" bash -c "$EXTRA_CMD" >> "$OUT/extra.txt" 2>&1; echo "extra rc=$?" >> "$OUT/extra.txt"; }

run_parts() {  # GPU index, parts...
  export CUDA_VISIBLE_DEVICES=$1; shift
  for p in "$@"; do [ $SECONDS -lt $END ] && "part_$p"; done
}
if [ "$GPUS" -gt 1 ]; then
  run_parts 0 ${GPU0:-trust tests} & run_parts 1 ${GPU1:-tables styles sweep} & wait
else
  run_parts 0 ${GPU0:-trust tests} ${GPU1:-tables styles sweep}
fi
grep -hE "[0-9]+ (passed|failed)|rc=|candidates per GPU-hour|settings per GPU-hour" "$OUT"/pytest_*.txt "$OUT"/tables.log \
  "$OUT"/extra.txt "$OUT"/evalbench.txt "$OUT"/decodeocc.txt "$OUT"/suite.txt 2>/dev/null
for f in redteam.md styles.md; do [ -f "$OUT/$f" ] && tail -n 4 "$OUT/$f"; done
ls "$OUT"
