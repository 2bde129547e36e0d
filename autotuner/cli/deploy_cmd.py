"""``autotuner deploy ...``: the engine with the archive's kernels in its op slots.

``autotuner deploy profile`` lists a decode step's kernels by device time.
``autotuner deploy slots [--model M]`` resolves (and re-verifies) the slots and prints which
kernel each one runs; ``autotuner deploy bench`` prints prefill, decode and total tok/s,
one-time compile ms and decode's fraction of the bandwidth bound for eager PyTorch, tuned
kernels, tuned kernels with CUDA-graph decode, and torch.compile (reduce-overhead).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

from autotuner.cli.common import add_archive_options, archive_url, plain, progress
from autotuner.errors import ConfigError

# autotuner.deploy.bench.MODES (written out: the parser must not import torch)
BENCH_MODES = ("eager", "tuned", "tuned+graph", "compile", "fused+graph", "fused+graph+pdl")
DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float32": "float32", "fp32": "float32"}
# autotuner.deploy.slots.OPT_IN_SLOTS (written out for the same reason): slots bound only when asked
OPT_IN_SLOT_NAMES = ("attention_o_residual",)


def _model_configs(args: argparse.Namespace) -> list[Any]:
    from autotuner.deploy import config_from_checkpoint, get_config

    if args.checkpoint:
        return [config_from_checkpoint(args.checkpoint)]
    return [get_config(name) for name in args.model]


def _resolve(args: argparse.Namespace, cfg: Any) -> tuple[Any, float]:
    from archive import Archive
    from autotuner.deploy import resolve_slots
    from autotuner.deploy.slots import DEFAULT_SLOTS

    started = time.perf_counter()
    wanted = DEFAULT_SLOTS + tuple(s for s in args.with_slot or () if s not in DEFAULT_SLOTS)
    with Archive.open(archive_url(args)) as archive:
        slots = resolve_slots(archive, DTYPES[args.dtype], cfg, gpu=args.gpu_name, record=not args.no_record,
                              slots=wanted)
    return slots, time.perf_counter() - started


def cmd_slots(args: argparse.Namespace) -> int:
    for cfg in _model_configs(args):
        slots, seconds = _resolve(args, cfg)
        if args.json:
            print(json.dumps({"model": cfg.name, "slots": slots.report(), "resolve_s": seconds}))
            continue
        print(f"{cfg.name} ({DTYPES[args.dtype]}), resolved in {seconds:.1f} s:")
        for slot, text in slots.report().items():
            print(f"  {slot:<17} {text}")
    return 0


def _table(rows: list[Any]) -> str:
    from autotuner.cli.render import table

    head = ["model", "prompt", "mode", "prefill tok/s", "decode tok/s", "total tok/s", "compile ms",
            "decode ms/tok", "% of BW bound"]
    cells = [[r.model, str(r.prompt_len), r.mode, f"{r.prefill_tok_s:,.0f}", f"{r.decode_tok_s:,.1f}",
              f"{r.total_tok_s:,.1f}", f"{r.one_time_ms:,.0f}", f"{r.decode_step_ms:.3f}",
              "-" if r.bandwidth_fraction is None else f"{100 * r.bandwidth_fraction:.1f}%"] for r in rows]
    return table([dict(zip(head, c)) for c in cells], head)


def _speedups(rows: list[Any]) -> list[str]:
    out = []
    by_key = {(r.model, r.prompt_len, r.mode): r for r in rows}
    for (model, t, mode), r in by_key.items():
        eager = by_key.get((model, t, "eager"))
        compiled = by_key.get((model, t, "compile"))
        if mode.split(" ")[0] in ("tuned+graph", "fused+graph", "fused+graph+pdl") and eager:
            vs_compile = f", {r.decode_tok_s / compiled.decode_tok_s:.2f}x torch.compile" if compiled else ""
            prefill = (f"; prefill {r.prefill_tok_s / eager.prefill_tok_s:.2f}x eager"
                       + (f", {r.prefill_tok_s / compiled.prefill_tok_s:.2f}x torch.compile" if compiled else ""))
            out.append(f"{model} prompt {t}: {mode} decode {r.decode_tok_s / eager.decode_tok_s:.2f}x eager"
                       f"{vs_compile}{prefill}")
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from autotuner.deploy import build_model
    from autotuner.deploy.bench import BenchReport, bench_model, check_parity, parity_line

    if args.unroll < 1 or args.decode_steps % args.unroll:
        raise ConfigError(f"--unroll {args.unroll}: must be a positive divisor of --decode-steps "
                          f"({args.decode_steps}); a replay decodes that many tokens")
    gpu_name, copy_gbps = _gpu_and_copy_bandwidth()
    report = BenchReport(gpu=gpu_name, copy_gbps=copy_gbps)
    parity: dict[str, Any] = {}
    dtype = getattr(torch, DTYPES[args.dtype])
    for cfg in _model_configs(args):
        slots, seconds = _resolve(args, cfg)
        report.slots[cfg.name], report.reverify_s[cfg.name] = slots.report(), seconds
        model = build_model(cfg, dtype=dtype, device="cuda", checkpoint=args.checkpoint, slots=slots)
        report.weight_bytes[cfg.name] = model.weight_bytes()
        report.rows += bench_model(model, slots, args.prompt_len, args.decode_steps, args.batch, args.repeats,
                                   copy_gbps, modes=args.modes, progress=None if args.json else progress,
                                   unroll=args.unroll, prefill_form=args.prefill_form)
        if not args.no_parity:
            parity[cfg.name] = check_parity(model, slots)
        del model
        torch.cuda.empty_cache()
    if args.json:
        print(json.dumps({**asdict(report), "parity": parity}, indent=2))
        return 0
    print(f"deploy bench on {report.gpu} (copy bandwidth {report.copy_gbps:,.0f} GB/s), {DTYPES[args.dtype]}, "
          f"batch {args.batch}, {args.decode_steps} decode steps, median of {args.repeats}")
    for name, slots_report in report.slots.items():
        print(f"{name}: {report.weight_bytes[name] / 1e9:.2f} GB of weights per decode step; slots "
              f"(resolved and re-verified in {report.reverify_s[name]:.1f} s):")
        for slot, text in slots_report.items():
            print(f"  {slot:<17} {text}")
    print(_table(report.rows))
    for r in report.rows:
        if r.prefill_form:
            print(f"prefill graph, {r.model} prompt {r.prompt_len}, {r.mode}: {r.prefill_form}")
    for line in _speedups(report.rows):
        print(line)
    for name, result in parity.items():
        for path in ("tuned", "tuned+graph", "fused", "fused+graph", "fused+graph+pdl"):
            if path in result:
                print(parity_line(name, path, result["steps"], result[path]))
    return 0


def _gpu_and_copy_bandwidth() -> tuple[str, float]:
    """This GPU's name and measured copy bandwidth (GB/s, cached per GPU and driver); NoGPUError without one."""
    from autotuner.evaluator.roofline import cached_peaks
    from autotuner.runtime.compile import cache_root
    from autotuner.runtime.device import device_facts, require_gpu

    require_gpu()
    facts = device_facts(0)
    return facts.gpu_name, cached_peaks(cache_root(), facts.driver).copy_gbps


def cmd_profile(args: argparse.Namespace) -> int:
    import torch

    from autotuner.deploy import build_model
    from autotuner.deploy.bench import cache_positions
    from autotuner.deploy.profile import format_profile, profile_decode

    gpu_name, copy_gbps = _gpu_and_copy_bandwidth()
    dtype = getattr(torch, DTYPES[args.dtype])
    if not args.json:
        print(f"decode profile on {gpu_name}, {DTYPES[args.dtype]}, batch {args.batch}")
    for cfg in _model_configs(args):
        slots = None if args.pytorch else _resolve(args, cfg)[0]
        model = build_model(cfg, dtype=dtype, device="cuda", checkpoint=args.checkpoint, slots=slots)
        for t in args.prompt_len:
            model.setup_caches(args.batch, cache_positions(t + args.steps + 8))  # + warm-up steps
            found = profile_decode(model, t, args.steps, fused=args.path != "op", pdl=args.path == "fused+pdl")
            print(json.dumps({"gpu": gpu_name, "copy_gbps": copy_gbps, **asdict(found)}) if args.json
                  else format_profile(found, copy_gbps, top=args.top))
        del model
        torch.cuda.empty_cache()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("deploy", help="the inference engine with the archive's kernels (slots, bench)",
                            description=plain(__doc__))
    targets = parser.add_subparsers(dest="deploy_target", metavar="TARGET", required=True)
    for name, func, help_text in (("slots", cmd_slots, "which kernel each op slot runs (re-verified), or why PyTorch"),
                                  ("bench", cmd_bench, "tok/s: eager, tuned, tuned + CUDA graph, torch.compile (GPU)"),
                                  ("profile", cmd_profile, "where a decode step's time goes, kernel by kernel (GPU)")):
        p = targets.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--model", nargs="+", default=["llama-3.2-1b"],
                       help="llama-3.2-1b, qwen2.5-1.5b, granite-3.2-2b (default: llama-3.2-1b)")
        p.add_argument("--checkpoint", help="a local Hugging Face checkpoint folder (config.json, *.safetensors) "
                                            "instead of random weights")
        p.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16", help="model dtype (default: bfloat16)")
        add_archive_options(p)
        p.add_argument("--gpu-name", metavar="NAME", help="GPU name to look kernels up for (default: this machine's)")
        p.add_argument("--no-record", action="store_true", help="do not record the re-verifications in the archive")
        p.add_argument("--with-slot", action="append", choices=OPT_IN_SLOT_NAMES, metavar="SLOT",
                       help="also bind this slot, off by default (repeatable; `deploy slots` says why each is "
                            "off): " + ", ".join(OPT_IN_SLOT_NAMES))
        p.add_argument("--json", action="store_true", help="print JSON to stdout")
        p.set_defaults(func=func)
        if name == "bench":
            p.add_argument("--prompt-len", type=int, nargs="+", default=[128, 512], help="prompt lengths (tokens)")
            p.add_argument("--decode-steps", type=int, default=128, help="tokens decoded per timed run")
            p.add_argument("--batch", type=int, default=1, help="sequences per batch")
            p.add_argument("--repeats", type=int, default=5, help="timed runs per mode and prompt (median)")
            p.add_argument("--no-parity", action="store_true", help="skip the 64-token greedy parity check")
            p.add_argument("--unroll", type=int, default=1, metavar="K",
                           help="greedy steps per CUDA-graph replay of the fused modes (a divisor of "
                                "--decode-steps; an end-of-sequence token would be seen up to K-1 tokens late)")
            p.add_argument("--prefill-form", default="auto", choices=["auto", "slots", "compiled"],
                           help="what the graphed modes' prefill graphs run: the slot kernels, the forward "
                                "compiled by torch.compile with PyTorch's ops, or (auto) whichever of the two "
                                "replays faster, timed on each bucket's first use")
            p.add_argument("--modes", nargs="+", default=list(BENCH_MODES), choices=list(BENCH_MODES) + ["fused"],
                           help="what to time (default: all but 'fused', the fused path launched from Python)")
        if name == "profile":
            p.add_argument("--prompt-len", type=int, nargs="+", default=[512], help="prompt lengths (tokens)")
            p.add_argument("--steps", type=int, default=16, help="decode steps profiled")
            p.add_argument("--batch", type=int, default=1, help="sequences per batch")
            p.add_argument("--top", type=int, default=15, help="kernels listed")
            p.add_argument("--pytorch", action="store_true", help="profile the pure PyTorch slots")
            p.add_argument("--path", choices=["op", "fused", "fused+pdl"], default="op",
                           help="decode path: op-by-op slots (default), the fused decode slots, the same with PDL")
