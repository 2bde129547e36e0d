"""Issue 13 on one GPU: the fused decode step's time, measured where it matters (the whole step,
one CUDA graph), across programmatic dependent launch, cross-kernel L2 prefetch, the attention
kernel and the decode seeds' launch parameters.

The seeds are bound to the engine's slots directly (no archive, no evaluator): this is a
measuring tool for choosing what the seeds do; the engine itself only runs verified kernels.
Phases (env SWEEP_PHASES, default all but occ): occ (the step at OCC 2 / 3 / 4 for every
projection slot, PDL off and on: does room on each SM for the next kernel help; about a
minute), modes (PDL x prefetch, old vs new seeds when OLD_SEEDS
names a folder of earlier seed files; the new seeds also with the attention seed's split kernel,
CLUSTER=0, beside its default cluster path), attention (the attention kernel alone, every
configuration of SWEEP_ATTN, plainly and with PDL, in us per call; old seeds too with OLD_SEEDS),
search (coordinate descent over each slot's PARAMS on the step time), final (the best
configuration: modes again, the profile, fp32 parity), ab (the step under each seed setting
of SWEEP_AB, interleaved), ncu (one graph step of the default seeds
between cudaProfilerStart / Stop, for Nsight Compute's per-kernel rows: run it under
`ncu --profile-from-start off`, see scripts/decode_ncu.sh). Writes $OUT/step_sweep.log and .json.

    OUT=out python scripts/decode_step_sweep.py     # about 4-6 minutes on an H200
    OUT=out SWEEP_PHASES=attention python scripts/decode_step_sweep.py   # about a minute

SWEEP_ATTN: the attention seed's configurations, ";"-separated, each "KEY=value,..." of its
PARAMS (default: the split kernel at BLOCK 128 and 64, the cluster path at several cluster sizes
and depths); SWEEP_ATTN_LEN: the sequence length of the attention phase (default 640, of 768).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("OUT", "gpu-out"))
OUT.mkdir(parents=True, exist_ok=True)
BUDGET_S = float(os.environ.get("SWEEP_BUDGET_S", "420"))
T0 = time.monotonic()
RESULTS: dict = {}

SEED_OF = {"qkv_rope_append": "decode_qkv_rope_append_bf16", "attention_decode": "attention_decode_gqa_bf16",
           "o_residual": "decode_gemv_residual_bf16", "gate_up_silu": "decode_gate_up_silu_bf16",
           "down_residual": "decode_gemv_residual_bf16", "lm_head_argmax": "decode_lm_head_argmax_bf16",
           "attention_o_residual": "attention_o_residual_bf16"}


def left() -> float:
    return BUDGET_S - (time.monotonic() - T0)


def say(text: str) -> None:
    print(text, flush=True)
    with open(OUT / "step_sweep.log", "a") as f:
        f.write(text + "\n")


def seed_class(folder: Path, name: str) -> type:
    spec = importlib.util.spec_from_file_location(f"sweep_{folder.name}_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ModelNew


def make_slots(folder: Path, params: dict[str, dict | None]):  # noqa: ANN201
    """Every slot of SEED_OF bound to its seed in ``folder`` (one that lacks it stays PyTorch), with
    ``params[slot]``; a slot whose params are None is left unbound, and so is an opt-in slot
    (slots.OPT_IN_SLOTS: attention_o_residual, which replaces attention_decode and o_residual)
    unless params names it, as the engine leaves it unless asked."""
    from autotuner.deploy.slots import OPT_IN_SLOTS, SlotBinding, Slots

    def wanted(slot: str) -> bool:
        return params.get(slot) is not None if (slot in params or slot in OPT_IN_SLOTS) else True

    bindings = {slot: SlotBinding(slot, "sweep", task=seed, model_new=seed_class(folder, seed),
                                  params=dict(params.get(slot) or {}))
                for slot, seed in SEED_OF.items() if (folder / f"{seed}.py").is_file() and wanted(slot)}
    return Slots(bindings)


def spec_params(spec: dict) -> dict[str, dict | None]:
    """A SWEEP_AB / SWEEP_NCU setting -> make_slots' params: "*" applies to every projection slot;
    a slot given null is left unbound; an opt-in slot is bound only where the setting names it
    (``{"attention_o_residual": {}}``: at its defaults)."""
    from autotuner.deploy.slots import OPT_IN_SLOTS

    out: dict[str, dict | None] = {}
    for slot in SEED_OF:
        given = spec.get(slot, None if slot in OPT_IN_SLOTS else {})
        out[slot] = None if given is None else {**(spec.get("*", {}) if slot in GEMV_SLOTS else {}), **given}
    return out


def step_ms(model, pdl: bool, prefetch: bool, steps: int = 100, repeats: int = 3) -> float:  # noqa: ANN001
    """ms per graph step (input copies + replay), median of ``repeats`` runs of ``steps`` steps at
    positions 576.. (a 512-token prompt's generation)."""
    from autotuner.deploy.fused import FusedGraphDecoder

    dec = FusedGraphDecoder(model, pdl=pdl, prefetch=prefetch)
    token = torch.zeros(1, 1, dtype=torch.long, device="cuda")
    for i in range(5):
        dec.step(token, 576 + i)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(steps):
            dec.step(token, 576 + i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / steps)
    del dec
    gc.collect()
    return statistics.median(times)


def phase_modes(model, folders: dict[str, Path], bound_ms: float) -> None:  # noqa: ANN001
    say(f"\n{'seeds':<6} {'pdl':<4} {'prefetch':<8} {'ms/step':>8} {'tok/s':>7} {'% bound':>7}")
    rows = []
    runs = [(label, folder, {}) for label, folder in folders.items()]
    # the new seeds with the attention seed's split kernel (CLUSTER=0): the step-level A/B of its two paths
    runs.append(("split", folders["new"], {"attention_decode": {"CLUSTER": 0, "BLOCK": 128}}))
    for label, folder, params in runs:
        model.slots = make_slots(folder, params)
        for pdl in (False, True):
            for prefetch in (False, True):
                if label in ("old", "split") and prefetch:
                    continue  # the old seeds take no hint; the split A/B: without prefetch only
                try:
                    ms = step_ms(model, pdl, prefetch)
                except Exception as exc:  # noqa: BLE001 - one failing mode is reported, not fatal
                    say(f"{label:<6} {str(pdl):<4} {str(prefetch):<8} FAILED {type(exc).__name__}: {str(exc)[:160]}")
                    rows.append({"seeds": label, "pdl": pdl, "prefetch": prefetch, "params": params,
                                 "failed": f"{type(exc).__name__}: {exc}"[:400]})
                    torch.cuda.synchronize()
                    continue
                rows.append({"seeds": label, "pdl": pdl, "prefetch": prefetch, "ms": ms, "params": params})
                say(f"{label:<6} {str(pdl):<4} {str(prefetch):<8} {ms:>8.4f} {1e3 / ms:>7.1f} {100 * bound_ms / ms:>7.1f}")
    say("(seeds 'split': the new seeds, attention through its split kernel, CLUSTER=0 BLOCK=128)")
    RESULTS["modes"] = rows


ATTN_DEFAULT = ("CLUSTER=0,BLOCK=128;CLUSTER=0,BLOCK=64;CLUSTER=8,BLOCK=256,KP=4;CLUSTER=8,BLOCK=128,KP=8;"
                "CLUSTER=8,BLOCK=256,KP=2,CHUNKS=4;CLUSTER=4,BLOCK=256,KP=8;CLUSTER=2,BLOCK=256,KP=8;"
                "CLUSTER=1,BLOCK=256,KP=8,CHUNKS=4")


def attention_configs(text: str) -> list[dict[str, int]]:
    """"CLUSTER=8,BLOCK=256;CLUSTER=0" -> [{"CLUSTER": 8, "BLOCK": 256}, {"CLUSTER": 0}]."""
    configs = []
    for part in text.split(";"):
        if part.strip():
            configs.append({k.strip(): int(v) for k, v in (kv.split("=") for kv in part.split(",") if kv.strip())})
    return configs


def time_graph(mod, q, caches, lens, pdl: bool) -> float:  # noqa: ANN001
    """us per call: the calls over every layer's cache captured in one graph (with PDL: each call's
    work before its griddepcontrol.wait overlaps the one before), median of 7 replays."""
    from autotuner.evaluator.timing import capture_graph, time_replays
    from autotuner.runtime import pdl_enabled

    with pdl_enabled(pdl):  # the warm-up and the capture both launch with PDL
        g, _ = capture_graph([mod] * len(caches), [[q, kc, vc, lens] for kc, vc in caches], warmup=1)
    g.replay()
    torch.cuda.synchronize()
    ts = [t * 1e3 for t in time_replays(g, 7, per=len(caches))]
    del g
    return statistics.median(ts)


def phase_attention(folders: dict[str, Path], cfg) -> None:  # noqa: ANN001
    """The attention kernel alone: 16 layers' caches (distinct, as in the step), 768 positions,
    a 640-token sequence (SWEEP_ATTN_LEN), replayed from one graph, plainly and with PDL. Each
    configuration of SWEEP_ATTN (the new seed; the old one, given OLD_SEEDS, at BLOCK 64 and 128
    only); one that fails is reported and skipped."""
    import inspect

    b, kvh, L, d, h = 1, cfg.num_kv_heads, 768, cfg.head_dim, cfg.num_heads
    n = int(os.environ.get("SWEEP_ATTN_LEN", "640"))
    caches = [(torch.randn(b, kvh, L, d, device="cuda", dtype=torch.bfloat16),
               torch.randn(b, kvh, L, d, device="cuda", dtype=torch.bfloat16)) for _ in range(cfg.num_layers)]
    q = torch.randn(b, h, d, device="cuda", dtype=torch.bfloat16)
    lens = torch.full((b,), n, dtype=torch.long, device="cuda")
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.float().unsqueeze(2), caches[0][0][:, :, :n].float().repeat_interleave(h // kvh, 1),
        caches[0][1][:, :, :n].float().repeat_interleave(h // kvh, 1)).squeeze(2)
    say(f"\nattention decode alone ({cfg.name}: {h} heads, {kvh} KV heads, cache {L}, length {n}, "
        f"{cfg.num_layers} layers in one graph), us per call")
    say(f"  {'seeds':<5} {'params':<34} {'kernel':<7} {'plain':>7} {'pdl':>7}   max |err| vs fp32 SDPA")
    rows = []
    configs = attention_configs(os.environ.get("SWEEP_ATTN", ATTN_DEFAULT))
    for label, folder in folders.items():
        cls = seed_class(folder, "attention_decode_gqa_bf16")
        accepted = set(inspect.signature(cls.__init__).parameters)
        chosen = configs if label == "new" else [{"BLOCK": 64}, {"BLOCK": 128}]
        for params in chosen:
            text = ",".join(f"{k}={v}" for k, v in params.items())
            if not set(params) <= accepted:
                say(f"  {label:<5} {text:<34} (not a parameter of this seed)")
                continue
            try:
                mod = cls(**params)
                which = getattr(mod, "uses_cluster_kernel", None)  # the new seed: which of its kernels runs
                kernel = "old" if which is None else ("cluster" if which(q, *caches[0]) else "split")
                err = float((mod(q, caches[0][0], caches[0][1], lens).float() - ref).abs().max())
                plain = time_graph(mod, q, caches, lens, pdl=False)
                pdl = time_graph(mod, q, caches, lens, pdl=True)
            except Exception as exc:  # noqa: BLE001 - one failing configuration is reported, not fatal
                say(f"  {label:<5} {text:<34} FAILED {type(exc).__name__}: {str(exc)[:160]}")
                rows.append({"seeds": label, "params": params, "failed": f"{type(exc).__name__}: {exc}"[:400]})
                torch.cuda.synchronize()
                continue
            rows.append({"seeds": label, "params": params, "kernel": kernel, "us_per_call": plain,
                         "us_per_call_pdl": pdl, "max_err": err})
            say(f"  {label:<5} {text:<34} {kernel:<7} {plain:7.2f} {pdl:7.2f}   {err:.4f}")
    RESULTS["attention"] = rows


GEMV_SLOTS = ("qkv_rope_append", "o_residual", "gate_up_silu", "down_residual", "lm_head_argmax")


def phase_occ(model, folder: Path, bound_ms: float) -> None:  # noqa: ANN001
    """Does room on each SM let the next kernel start early? ptxas gives the Llama defaults of
    down, gate/up, qkv and the LM head 128 registers at 128 threads, so at OCC 4 one kernel fills
    every SM's registers and a PDL-launched successor cannot place a block until blocks retire.
    The step at OCC 2 / 3 / 4 for every projection slot at once, with PDL off and on: if the
    hypothesis holds, PDL's gain grows as OCC falls below 4 (and the step gets faster)."""
    say(f"\n{'OCC':<5} {'pdl':<5} {'ms/step':>8} {'tok/s':>7} {'% bound':>7}")
    rows = []
    for occ in (4, 3, 2):
        model.slots = make_slots(folder, {slot: {"OCC": occ} for slot in GEMV_SLOTS})
        for pdl in (False, True):
            ms = step_ms(model, pdl, False)
            rows.append({"occ": occ, "pdl": pdl, "ms": ms})
            say(f"{occ:<5} {str(pdl):<5} {ms:>8.4f} {1e3 / ms:>7.1f} {100 * bound_ms / ms:>7.1f}")
    RESULTS["occ"] = rows


def paired_ms(model, incumbent, trial, pdl: bool, prefetch: bool, rounds: int = 2) -> tuple[float, float]:  # noqa: ANN001
    """(incumbent ms, trial ms): the two slot sets measured alternately, ``rounds`` times each,
    medians: a trial is judged against the incumbent measured beside it, not against a figure
    taken minutes earlier (on the H200, 2026-12-02, one search's trail drifted from 0.95 to
    0.87 ms a step for settings that measured alike side by side)."""
    inc, tri = [], []
    for _ in range(rounds):
        for slots, out in ((incumbent, inc), (trial, tri)):
            model.slots = slots
            out.append(step_ms(model, pdl, prefetch, steps=60, repeats=3))
    return statistics.median(inc), statistics.median(tri)


def phase_search(model, folder: Path, pdl: bool, prefetch: bool) -> dict[str, dict]:  # noqa: ANN001
    """Coordinate descent on the whole step: each slot's PARAMS one at a time, each trial measured
    alternately with the incumbent (``paired_ms``), kept when faster by more than the noise (0.3%);
    from SWEEP_START (a SWEEP_AB setting) where given, else the seeds' defaults. SWEEP_ROUNDS:
    rounds over every slot (default 2); SWEEP_SEARCH_SLOTS / SWEEP_SEARCH_PARAMS: comma-separated
    slots / PARAM names to search (default: all)."""
    import ast

    from autotuner.deploy.slots import OPT_IN_SLOTS as OPT_IN

    start = spec_params(json.loads(os.environ.get("SWEEP_START", "{}")))
    best: dict[str, dict] = {slot: dict(start.get(slot) or {}) for slot in SEED_OF if slot not in OPT_IN}
    model.slots = make_slots(folder, best)
    best_ms = step_ms(model, pdl, prefetch)
    say(f"\nsearch (pdl={pdl}, prefetch={prefetch}): start {best_ms:.4f} ms")
    trail = [{"params": json.loads(json.dumps(best)), "ms": best_ms}]
    order = ["down_residual", "gate_up_silu", "qkv_rope_append", "o_residual", "lm_head_argmax", "attention_decode"]
    only_slots = [x for x in os.environ.get("SWEEP_SEARCH_SLOTS", "").split(",") if x]  # default: every slot
    only_params = {x for x in os.environ.get("SWEEP_SEARCH_PARAMS", "").split(",") if x}  # default: every PARAM
    order = [slot for slot in order if not only_slots or slot in only_slots]
    for rnd in range(int(os.environ.get("SWEEP_ROUNDS", "2"))):
        for slot in order:
            src = (folder / f"{SEED_OF[slot]}.py").read_text()
            tree = ast.parse(src)
            space = next(ast.literal_eval(n.value) for n in tree.body
                         if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PARAMS")
            for name, values in space.items():
                if only_params and name not in only_params:
                    continue
                for value in values:
                    if left() < 90:
                        say("(search stopped for time)")
                        return best
                    if best[slot].get(name) == value:
                        continue
                    trial = {k: dict(v) for k, v in best.items()}
                    trial[slot][name] = value
                    try:
                        inc_ms, ms = paired_ms(model, make_slots(folder, best), make_slots(folder, trial), pdl, prefetch)
                    except Exception as exc:  # noqa: BLE001 - a failing setting is skipped, not fatal
                        say(f"  {slot} {name}={value}: FAILED {type(exc).__name__}: {str(exc)[:160]}")
                        continue
                    better = ms < inc_ms * 0.997
                    say(f"  r{rnd} {slot:<17} {name}={value!s:<5} {ms:.4f} ms against {inc_ms:.4f}"
                        f"{'  <- best' if better else ''}")
                    trail.append({"slot": slot, "param": name, "value": value, "ms": ms, "incumbent_ms": inc_ms})
                    if better:
                        best, best_ms = trial, ms
        say(f"after round {rnd}: {best_ms:.4f} ms, {json.dumps(best)}")
    RESULTS["search"] = {"pdl": pdl, "prefetch": prefetch, "best": best, "best_ms": best_ms, "trail": trail}
    return best


def phase_final(model, folder: Path, best: dict, bound_ms: float, copy_gbps: float) -> None:  # noqa: ANN001
    from autotuner.deploy.bench import check_parity_fp32, parity_fp32_line
    from autotuner.deploy.profile import format_profile, profile_decode

    model.slots = make_slots(folder, best)
    say(f"\nbest configuration {json.dumps(best)}")
    rows = []
    for pdl in (False, True):
        for prefetch in (False, True):
            ms = step_ms(model, pdl, prefetch, steps=128, repeats=5)
            rows.append({"pdl": pdl, "prefetch": prefetch, "ms": ms})
            say(f"  pdl={str(pdl):<5} prefetch={str(prefetch):<5} {ms:.4f} ms/step  {1e3 / ms:7.1f} tok/s  "
                f"{100 * bound_ms / ms:5.1f}% of the bound")
    RESULTS["final"] = rows
    if left() > 40:
        found = profile_decode(model, 576, 16, fused=True)
        say("\nprofile (fused path, eager launches):\n" + format_profile(found, copy_gbps, top=14))
    if left() > 30:
        report = check_parity_fp32(model, model.slots, paths=("fused+graph", "fused+graph+pdl"), steps=32)
        for path in ("fused+graph", "fused+graph+pdl"):
            say(parity_fp32_line(model.cfg.name, path, report[path], report["bf16"]["max_err"]))


def phase_ab(model, folder: Path, bound_ms: float) -> None:  # noqa: ANN001
    """Whole-step A/B of seed settings (SWEEP_AB: JSON {"name": {"slot" or "*": {PARAM: value}}},
    "*" meaning every projection slot, "_prefetch": true (or a list of slot names) the engine's
    cross-kernel L2 hints on (only those slots'), "_early": false no kernel reading its epilogue's
    inputs before its PDL wait (Slots.early), "_seeds": a folder the seeds come from instead (an
    earlier version of them, e.g. from git show), a slot given null left unbound, an opt-in slot
    bound where named), PDL on, the configurations interleaved over SWEEP_AB_ROUNDS rounds (default 2) so
    that drift on a shared GPU falls on all of them alike; each figure is the median of the rounds."""
    configs = {"default": {}, **json.loads(os.environ.get("SWEEP_AB", "{}"))}
    found: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(int(os.environ.get("SWEEP_AB_ROUNDS", "2"))):
        for name, spec in configs.items():
            try:
                spec = dict(spec)
                prefetch = spec.pop("_prefetch", False)  # the cross-kernel L2 hints: true (all) or slot names
                prefetch = set(prefetch) if isinstance(prefetch, list) else bool(prefetch)
                early = bool(spec.pop("_early", True))  # false: no kernel reads its epilogue's inputs early
                seeds = Path(spec.pop("_seeds", folder))  # another folder of seed files (an earlier version)
                model.slots = make_slots(seeds, spec_params(spec))
                model.slots.early = early
                found[name].append(step_ms(model, True, prefetch, steps=128, repeats=3))
            except Exception as exc:  # noqa: BLE001 - one setting refused must not lose the others
                say(f"{name}: FAILED {type(exc).__name__}: {str(exc)[:300]}")
                found[name].append(float("nan"))
    say(f"\n{'setting':<24} {'ms/step':>8} {'tok/s':>7} {'% bound':>7}   (PDL on; rounds)")
    for name, times in found.items():
        ok = [t for t in times if t == t]
        ms = statistics.median(ok) if ok else float("nan")
        say(f"{name:<24} {ms:>8.4f} {1e3 / ms:>7.1f} {100 * bound_ms / ms:>7.1f}   "
            + " ".join(f"{t:.4f}" for t in times))
    RESULTS["ab"] = {name: times for name, times in found.items()}


def phase_ncu(model, folder: Path, pdl: bool) -> None:  # noqa: ANN001
    """One decode step's graph replayed between cudaProfilerStart and Stop: under
    ``ncu --profile-from-start off`` every kernel node is one row (its own duration and DRAM
    bytes), which splits the shared slots (O and down run one kernel) that a step time cannot."""
    from autotuner.deploy.fused import FusedGraphDecoder

    spec = json.loads(os.environ.get("SWEEP_NCU", "{}"))  # {"slot" or "*": {PARAM: value}}: the setting profiled
    model.slots = make_slots(folder, spec_params(spec))
    dec = FusedGraphDecoder(model, pdl=pdl, prefetch=False)
    token = torch.zeros(1, 1, dtype=torch.long, device="cuda")
    for i in range(5):
        dec.step(token, 576 + i)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    dec.step(token, 581)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    say("ncu phase: one step profiled")


def main() -> int:
    from autotuner.deploy import build_model, get_config
    from autotuner.evaluator.roofline import cached_peaks
    from autotuner.runtime.compile import cache_root
    from autotuner.runtime.device import device_facts

    facts = device_facts(0)
    copy_gbps = cached_peaks(cache_root(), facts.driver).copy_gbps
    cfg = get_config(os.environ.get("SWEEP_MODEL", "llama-3.2-1b"))
    new = ROOT / "kernels" / "seeds"
    folders = {"new": new}
    if os.environ.get("OLD_SEEDS"):
        folders = {"old": Path(os.environ["OLD_SEEDS"]).resolve(), "new": new}
    phases = os.environ.get("SWEEP_PHASES", "modes,attention,search,final").split(",")
    torch.manual_seed(0)
    from autotuner.deploy.slots import Slots

    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=Slots.pytorch())
    model.setup_caches(1, 768)
    bound_ms = model.weight_bytes() / (copy_gbps * 1e9) * 1e3
    say(f"{facts.gpu_name}: copy {copy_gbps:,.0f} GB/s; {cfg.name} bf16 batch 1, {model.weight_bytes() / 1e9:.2f} GB "
        f"of weights a step: bound {bound_ms:.4f} ms = {1e3 / bound_ms:,.0f} tok/s")
    RESULTS.update(device=facts.gpu_name, copy_gbps=copy_gbps, bound_ms=bound_ms, model=cfg.name)
    try:
        if "modes" in phases:
            phase_modes(model, folders, bound_ms)
        if "occ" in phases:
            phase_occ(model, new, bound_ms)
        if "attention" in phases:
            phase_attention(folders, cfg)
        best: dict = {}
        mode = (os.environ.get("SWEEP_PDL", "1") == "1", os.environ.get("SWEEP_PREFETCH", "0") == "1")
        if "ab" in phases:
            phase_ab(model, new, bound_ms)
        if "ncu" in phases:
            phase_ncu(model, new, mode[0])
        if "search" in phases:
            best = phase_search(model, new, *mode)
        if "final" in phases and left() > 60:
            phase_final(model, new, best, bound_ms, copy_gbps)
    finally:
        with open(OUT / "step_sweep.json", "w") as f:
            json.dump(RESULTS, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
