"""Issue 13 on one GPU, one command (scripts/decode_gpu.sh runs it; everything under $OUT).

1. evaluate: every decode seed on its task with the evaluator (verified at every shape,
   timed with the L2 flushed beside eager PyTorch = cuBLAS for the projections), recorded
   in an archive; then the op-by-op slot tasks' first proposals, so the old path has kernels;
2. sweep: each projection kernel at the shapes of all three models against F.linear
   (cuBLAS), weights rotated over > 4x L2 so every call reads DRAM: time, GB/s, % of the
   measured copy bandwidth; a few parameter settings where it matters;
3. bench: the deploy bench for Llama-3.2-1B, prompts 128 and 512, 128 decode steps: the fused
   path in a CUDA graph without and with PDL, the old tuned path, eager and torch.compile; the
   parity contract against fp32; then Qwen2.5-1.5B and Granite-3.2-2B while time is left
   (DECODE_MODES, DECODE_MODELS and DECODE_UNROLLS narrow what runs);
4. profile: the fused path's kernels (with PDL) for each model benched (Llama also without;
   DECODE_PROFILE=0: none);
5. prefill (opt-in: DECODE_PHASES=engine,prefill): Llama's graphed prefill in each form (slot
   kernels, compiled, auto) against torch.compile's, each the median of PREFILL_CALLS
   back-to-back calls, interleaved over PREFILL_ROUNDS rounds, then the kernels of the slots
   form, the compiled form and compile at the longest of PREFILL_LENS by device time.
The slots bind this run's verified kernels without a second verification (the evaluator
verified them minutes before; `autotuner deploy bench` re-verifies, which takes longer).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("OUT", ROOT / "gpu-out"))
BUDGET_S = float(os.environ.get("DECODE_BUDGET_S", 330))
START = time.perf_counter()
_LOG: list = []  # opened on first use: the evaluator's fork server re-imports this module as __main__


def left() -> float:
    return BUDGET_S - (time.perf_counter() - START)


def say(text: str) -> None:
    print(text, flush=True)
    if not _LOG:
        _LOG.append(open(OUT / "decode_gpu.log", "a"))  # noqa: SIM115
    _LOG[0].write(text + "\n")
    _LOG[0].flush()


SEEDS = {
    "decode/gemv_qkv_bf16.py": "decode_gemv_bf16",
    "decode/gemv_o_bf16.py": "decode_gemv_bf16",
    "decode/gemv_gate_up_bf16.py": "decode_gemv_bf16",
    "decode/gemv_down_bf16.py": "decode_gemv_bf16",
    "decode/gemv_lm_head_bf16.py": "decode_gemv_bf16",
    "decode/qkv_rope_append_bf16.py": "decode_qkv_rope_append_bf16",
    "decode/o_residual_bf16.py": "decode_gemv_residual_bf16",
    "decode/gate_up_silu_bf16.py": "decode_gate_up_silu_bf16",
    "decode/down_residual_bf16.py": "decode_gemv_residual_bf16",
    "decode/lm_head_argmax_bf16.py": "decode_lm_head_argmax_bf16",
}


def evaluate_all(archive, copy_gbps: float, which: str, reserve_s: float) -> dict:  # noqa: ANN001
    """which: "engine" (the fused slot tasks and the old op slots' tasks) or "gemv" (the plain
    projection tasks); stops while ``reserve_s`` seconds of the budget are left."""
    from archive import KernelSpec
    from autotuner.deploy.slots import OP_SLOTS, SLOT_TASKS
    from autotuner.evaluator import EvalConfig, evaluate
    from autotuner.tasks import load_task, suite_dir
    from evolution.proposers.rules import translate
    from evolution.proposers.seeds import seeds_for

    config = EvalConfig(compile_baseline=False, trials=5, timing_calls=50)
    results = {}
    jobs = [(rel, (ROOT / "kernels" / "seeds" / f"{seed}.py").read_text(), "seed") for rel, seed in SEEDS.items()
            if (which == "gemv") == ("/gemv_" in rel)]
    for slot in OP_SLOTS if which == "engine" else ():  # the old path's kernels: the first rules translation, else the seed
        rel = SLOT_TASKS[slot]["bfloat16"]
        task = load_task(suite_dir() / rel)
        proposals = translate(task, max_variants=1).proposals + seeds_for(task)
        if proposals:
            jobs.append((rel, proposals[0].source, proposals[0].proposer))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "decode-gpu-candidates"
    tmp.mkdir(parents=True, exist_ok=True)
    say(f"\nevaluations ({which}):\n{'task':<34} {'verdict':<9} {'kernel ms':>9} {'cuBLAS/eager ms':>15} {'speedup':>7} {'GB/s':>7} {'% copy':>6}")
    for rel, source, proposer in jobs:
        if left() < reserve_s:
            say(f"(evaluation stopped for time before {rel})")
            break
        task = load_task(suite_dir() / rel)
        path = tmp / f"{task.name}.py"
        path.write_text(source)
        result = evaluate(task.path, path, config=config)
        if result.verdict.value != "error":
            archive.record(task, KernelSpec(source, proposer=proposer), result)
        results[rel] = result
        timed = result.timed
        cand = timed.candidate.median_ms if timed and timed.candidate else None
        eager = timed.eager.median_ms if timed and timed.eager else None
        gbps = timed.bytes_moved / (cand * 1e-3) / 1e9 if timed and cand and timed.bytes_moved else None
        say(f"{task.name:<34} {result.verdict.value:<9} {cand or float('nan'):>9.4f} {eager or float('nan'):>15.4f} "
            f"{(eager / cand) if cand and eager else float('nan'):>7.2f} {gbps or float('nan'):>7.0f} "
            f"{100 * gbps / copy_gbps if gbps else float('nan'):>6.1f}"
            + ("" if result.accepted else f"  {result.stage.value}: {result.reason[:160]}"))
        with open(OUT / "evals.jsonl", "a") as f:
            f.write(json.dumps({"task": rel, "proposer": proposer, **result.to_json()}, default=str) + "\n")
    return results


def _seed_class(name: str) -> type:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"seed_{name}", ROOT / "kernels" / "seeds" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ModelNew


def _time_rotating(fn, sets: list, calls: int = 40) -> float:  # noqa: ANN001
    """Mean ms of fn(*set) over rotating sets (each set's weights distinct: DRAM, not L2), the
    calls replayed from one CUDA graph as the decode step runs them: launched one by one from
    Python, a microsecond kernel would be timed at its host overhead instead (median of 5 replays)."""
    from autotuner.evaluator.timing import capture_graph, time_replays

    graph, _ = capture_graph([fn] * calls, [sets[i % len(sets)] for i in range(calls)], warmup=1)
    graph.replay()
    torch.cuda.synchronize()
    return statistics.median(time_replays(graph, 5, per=calls))


def sweep(copy_gbps: float, l2_bytes: int) -> None:
    """Each projection at every model's shape: seed kernel vs F.linear (cuBLAS)."""
    import torch.nn.functional as F

    from autotuner.deploy.model_config import MODELS

    plain = _seed_class("decode_gemv_bf16")
    shapes = []
    for cfg in MODELS.values():
        rows_qkv = cfg.q_size + 2 * cfg.kv_size
        shapes += [(cfg.name, "qkv", cfg.hidden_size, rows_qkv), (cfg.name, "o", cfg.q_size, cfg.hidden_size),
                   (cfg.name, "gate_up", cfg.hidden_size, 2 * cfg.intermediate_size),
                   (cfg.name, "down", cfg.intermediate_size, cfg.hidden_size), (cfg.name, "lm_head", cfg.hidden_size,
                                                                                 cfg.vocab_size)]
    variants = {"default": {}, "splitk1": {"SPLITK": 1}, "upw4": {"UPW": 4}, "unroll8": {"UNROLL": 8},
                "nopf": {"PREFETCH": 0}, "occ8": {"OCC": 8}, "block256": {"BLOCK": 256}}
    if os.environ.get("SWEEP_VARIANTS"):  # {"name": {PARAM: value}, ...}: the seed settings to compare
        variants = {"default": {}, **json.loads(os.environ["SWEEP_VARIANTS"])}
    only = os.environ.get("SWEEP_MODELS")  # comma-separated model names (default: all three)
    if only:
        shapes = [s for s in shapes if s[0] in only.split(",")]
    say(f"\n{'model':<15} {'proj':<8} {'K':>5} {'N':>6} {'MB':>6} {'cuBLAS us':>9} {'GB/s':>6} {'%':>5} "
        + " ".join(f"{v + ' us':>11} {'%':>4}" for v in variants))
    rows = []
    for model, proj, k, n in shapes:
        if left() < 270:
            say("(sweep stopped for time)")
            break
        nbytes = k * n * 2
        copies = max(2, -(-4 * l2_bytes // nbytes))
        weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * k ** -0.5 for _ in range(min(copies, 40))]
        x = torch.randn(1, k, device="cuda", dtype=torch.bfloat16)
        sets = [(x, w) for w in weights]
        t_ref = _time_rotating(lambda x, w: F.linear(x, w), sets)
        cells = []
        line = {"model": model, "proj": proj, "K": k, "N": n, "bytes": nbytes, "cublas_ms": t_ref}
        for vname, params in variants.items():
            if vname != "default" and (proj == "lm_head" or left() < 285):
                cells.append(f"{'-':>11} {'-':>4}")
                continue
            mods = []
            for w in weights:
                with torch.device("cuda"):
                    m = plain(k, n, False, **params).to(torch.bfloat16)
                m.weight = torch.nn.Parameter(w, requires_grad=False)
                mods.append(m)
            msets = [(m, x) for m in mods]
            ref = F.linear(x, weights[0]).float()
            got = mods[0](x).float()
            err = float((got - ref).abs().max())
            t = _time_rotating(lambda m, x: m(x), msets)
            line[vname + "_ms"] = t
            line[vname + "_err"] = err
            cells.append(f"{1e3 * t:>11.1f} {100 * nbytes / (t * 1e-3) / 1e9 / copy_gbps:>4.0f}")
        rows.append(line)
        gb = nbytes / (t_ref * 1e-3) / 1e9
        say(f"{model:<15} {proj:<8} {k:>5} {n:>6} {nbytes / 1e6:>6.1f} {1e3 * t_ref:>9.1f} {gb:>6.0f} "
            f"{100 * gb / copy_gbps:>5.0f} " + " ".join(cells))
        del weights, sets
        torch.cuda.empty_cache()
    with open(OUT / "sweep.json", "w") as f:
        json.dump(rows, f, indent=1)


def this_run_verifier():  # noqa: ANN201
    """A slot verifier that takes this run's evaluation of the same task and source (evals.jsonl)
    instead of a second verification; anything this run did not evaluate is verified in full."""
    from autotuner.evaluator.verdict import EvalResult

    verified: dict[str, EvalResult] = {}

    def this_run(task_path: Path, cand_path: Path, params: dict) -> EvalResult:  # noqa: ARG001
        """This run's evaluation of the same task and source (no second verification)."""
        from autotuner.candidate import source_hash
        from autotuner.tasks import load_task

        key = load_task(task_path).name + ":" + source_hash(cand_path.read_text())
        if key not in verified:  # not evaluated in this run: the full re-verification
            from autotuner.deploy.resolve import evaluator_verifier

            return evaluator_verifier(task_path, cand_path, params)
        return verified[key]

    from autotuner.candidate import source_hash
    from autotuner.tasks import load_task, suite_dir

    for line in (OUT / "evals.jsonl").read_text().splitlines() if (OUT / "evals.jsonl").is_file() else []:
        data = json.loads(line)
        task = load_task(suite_dir() / data.pop("task"))
        data.pop("proposer")
        result = EvalResult.from_json(data)
        src_path = Path(os.environ.get("TMPDIR", "/tmp")) / "decode-gpu-candidates" / f"{task.name}.py"
        verified[task.name + ":" + source_hash(src_path.read_text())] = result
    return this_run


def bench_and_parity(archive, copy_gbps: float, which: str) -> None:  # noqa: ANN001
    from autotuner.cli.deploy_cmd import _speedups, _table
    from autotuner.deploy import build_model, get_config, resolve_slots
    from autotuner.deploy.bench import bench_model, check_parity_fp32, parity_fp32_line

    this_run = this_run_verifier()
    rows, all_rows = [], []
    plan = {"llama": [("llama-3.2-1b", [128, 512], ["fused+graph+pdl", "fused+graph", "tuned+graph", "eager",
                                                    "compile"], 3)],
            "others": [("qwen2.5-1.5b", [128], ["fused+graph+pdl", "fused+graph", "tuned+graph", "compile"], 2),
                       ("granite-3.2-2b", [128], ["fused+graph+pdl", "fused+graph", "tuned+graph", "compile"], 2)]}[which]
    wanted = os.environ.get("DECODE_MODELS")  # comma-separated model names (default: the phase's plan)
    plan = [entry for entry in plan if not wanted or entry[0] in wanted.split(",")]
    for name, prompts, modes, repeats in plan:
        if left() < 60:
            say(f"(bench stopped for time before {name})")
            break
        cfg = get_config(name)
        slots = resolve_slots(archive, "bfloat16", cfg, verifier=this_run, record=False)
        say(f"\n{name} slots:")
        for slot, text in slots.report().items():
            say(f"  {slot:<17} {text[:150]}")
        model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=slots)
        rows = []
        only = os.environ.get("DECODE_MODES")
        # greedy steps per graph replay of the fused graphs (DECODE_UNROLLS=1,4: each mode at both)
        unrolls = [int(u) for u in os.environ.get("DECODE_UNROLLS", "1").split(",")]
        for mode in [m for m in modes if not only or m in only.split(",")]:
            for unroll in unrolls if mode.startswith("fused+graph") else [1]:
                need = 100 if mode == "compile" else 60  # graphed modes compile a prefill form too
                if left() < need:
                    say(f"(skipped {name} {mode} x{unroll} for time)")
                    continue
                try:
                    rows += bench_model(model, slots, prompts, 128, 1, repeats, copy_gbps, modes=[mode], unroll=unroll)
                except Exception as exc:  # noqa: BLE001 - one mode failing must not lose the others
                    say(f"{name} {mode} x{unroll}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
        say(_table(rows))
        for r in rows:
            if r.prefill_form:
                say(f"prefill graph, prompt {r.prompt_len}, {r.mode}: {r.prefill_form}")
        for line in _speedups(rows):
            say(line)
        all_rows += rows
        if left() > 30:
            try:
                if model.max_seq < 64:  # every bench of this model was skipped for time: no caches yet
                    model.setup_caches(1, 128)
                report = check_parity_fp32(model, slots, paths=("fused+graph", "fused+graph+pdl"), steps=32)
                for path in ("fused+graph", "fused+graph+pdl"):
                    say(parity_fp32_line(name, path, report[path], report["bf16"]["max_err"]))
            except Exception as exc:  # noqa: BLE001
                say(f"parity {name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
        # where each model's step goes (Qwen ran at 43% of its bound, Llama at 62%); DECODE_PROFILE=0
        # leaves it out (session 22: Qwen's profile took the time Granite's bench needed)
        if left() > 40 and os.environ.get("DECODE_PROFILE", "1") != "0":
            from autotuner.deploy.bench import cache_positions
            from autotuner.deploy.profile import format_profile, profile_decode

            model.setup_caches(1, cache_positions(512 + 16 + 8))
            for pdl in (True, False) if name == "llama-3.2-1b" else (True,):
                found = profile_decode(model, 512, 16, fused=True, pdl=pdl)
                text = format_profile(found, copy_gbps, top=14)
                say(f"\nprofile (fused path, PDL {'on' if pdl else 'off'} in the graph step):\n{text}")
        del model
        torch.cuda.empty_cache()
    with open(OUT / "bench.json", "a") as f:
        json.dump([r.__dict__ for r in all_rows], f, indent=1)


def prefill_compare(archive, copy_gbps: float) -> None:  # noqa: ANN001, ARG001
    """Llama-3.2-1B's prefill: each form a bucket's graph can run (the slot kernels, the compiled
    PyTorch forward, and ``auto``, which keeps the faster) against torch.compile's prefill, each
    prompt length timed as the median of PREFILL_CALLS back-to-back calls, the modes interleaved
    over PREFILL_ROUNDS rounds (one call a repeat read 148k to 185k tok/s for compile's 512-token
    prefill across runs); then each mode's kernels at the longest prompt by device time
    (torch.profiler). PREFILL_AUTOTUNE=1 adds the compiled form under max-autotune (minutes)."""
    from autotuner.deploy import build_model, get_config, resolve_slots
    from autotuner.deploy.bench import _Mode, _sync, cache_positions
    from autotuner.deploy.prefill import GraphPrefill
    from autotuner.deploy.slots import Slots

    cfg = get_config("llama-3.2-1b")
    slots = resolve_slots(archive, "bfloat16", cfg, verifier=this_run_verifier(), record=False)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=slots)
    prompts = [int(t) for t in os.environ.get("PREFILL_LENS", "128,512").split(",")]
    model.setup_caches(1, cache_positions(max(prompts) + 1))
    calls, rounds = int(os.environ.get("PREFILL_CALLS", 20)), int(os.environ.get("PREFILL_ROUNDS", 3))
    pytorch = Slots.pytorch("prefill comparison: PyTorch baseline")
    graphs = {form: GraphPrefill(model, form=form) for form in ("slots", "compiled", "auto")}
    if os.environ.get("PREFILL_AUTOTUNE") == "1":
        graphs["compiled-autotune"] = GraphPrefill(model, form="compiled", compile_mode="max-autotune-no-cudagraphs")
    fns = {f"graph {form}": (slots, graph) for form, graph in graphs.items()}
    compiled_mode = _Mode(model, pytorch, "compile")  # as bench_model builds it
    fns["compile"] = (pytorch, compiled_mode.prefill_fn())
    gen = torch.Generator(device="cpu").manual_seed(0)
    inputs = {t: torch.randint(0, cfg.vocab_size, (1, t), generator=gen).cuda() for t in prompts}
    for name, (active, fn) in fns.items():  # compile and capture outside the timing
        model.slots = active
        for t in prompts:
            started = time.perf_counter()
            fn(inputs[t])
            _sync()
            say(f"  {name} prompt {t}: first call {time.perf_counter() - started:.1f} s")
    for form, graph in graphs.items():
        for choice in graph.choices.values():
            say(f"  graph {form}: {choice.describe()}")
    found: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for t in prompts:
            for name, (active, fn) in fns.items():
                if left() < 20:
                    break
                model.slots = active  # (a guard on the slots would otherwise recompile compile's graph)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                times = []
                for _ in range(calls):
                    start.record()
                    fn(inputs[t])
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end))
                found.setdefault((name, t), []).append(statistics.median(times))
    say(f"\nprefill, median of {calls} calls a round, {rounds} rounds interleaved (ms; tok/s of the median round):")
    for (name, t), per_round in sorted(found.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ms = statistics.median(per_round)
        base = found.get(("compile", t))
        vs = f"  {statistics.median(base) / ms:.3f}x compile" if base else ""
        say(f"  {name:<24} prompt {t:>5}: {ms:.4f} ms, {t / ms * 1e3:>9,.0f} tok/s{vs}   rounds "
            + " ".join(f"{x:.4f}" for x in per_round))
    if left() < 40:
        return
    from torch.profiler import ProfilerActivity, profile

    t = max(prompts)
    for name in ("graph slots", "graph compiled", "compile"):
        active, fn = fns[name]
        model.slots = active
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                fn(inputs[t])
            _sync()
        say(f"\n{name} prefill at {t} tokens, kernels by device time (3 calls):\n"
            + prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=80))
    model.slots = slots
    del model
    torch.cuda.empty_cache()


def main() -> int:
    from archive import Archive
    from autotuner.evaluator.roofline import cached_peaks
    from autotuner.runtime.compile import cache_root
    from autotuner.runtime.device import device_facts

    facts = device_facts(0)
    copy_gbps = cached_peaks(cache_root(), facts.driver).copy_gbps
    say(f"{facts.gpu_name}, {facts.sm_count} SMs, L2 {facts.l2_bytes / 2**20:.0f} MiB, copy bandwidth {copy_gbps:,.0f} GB/s; "
        f"torch {facts.torch_version}, CuPy {facts.cupy_version}")
    db = Path(os.environ.get("TMPDIR", "/tmp")) / "decode-gpu.db"
    phases = os.environ.get("DECODE_PHASES", "sweep,engine,llama,gemv,others").split(",")
    with Archive.open(f"sqlite:///{db}") as archive:
        for name, fn in (("sweep", lambda: sweep(copy_gbps, facts.l2_bytes)),
                         ("engine evaluations", lambda: evaluate_all(archive, copy_gbps, "engine", float(os.environ.get("DECODE_RESERVE_S", 170)))),
                         ("llama bench", lambda: bench_and_parity(archive, copy_gbps, "llama")),
                         ("gemv evaluations", lambda: evaluate_all(archive, copy_gbps, "gemv", 40)),
                         ("qwen / granite bench", lambda: bench_and_parity(archive, copy_gbps, "others")),
                         ("prefill comparison", lambda: prefill_compare(archive, copy_gbps))):
            if name.split()[0].replace("/", "").replace("qwen", "others") not in phases:  # prefill: opt-in
                continue
            phase = time.perf_counter()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - report and go on to the next phase
                import traceback

                say(f"{name}: FAILED {type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}")
            say(f"({name}: {time.perf_counter() - phase:.0f} s, {left():.0f} s of the budget left)")
    say(f"(total {time.perf_counter() - START:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
