"""``autotuner eval TASK CANDIDATE``: one verdict you can trust, one timing you can believe."""

from __future__ import annotations

import argparse
import json
from typing import Any

from autotuner.evaluator.throughput import part_of
from autotuner.evaluator.verdict import EvalResult, TimingStats

from autotuner.cli.common import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, add_archive_options, archive_url
from autotuner.speedup import format_speedup

EXIT_ACCEPTED = EXIT_OK


def _param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="verify and time one candidate against a task (GPU)")
    parser.add_argument("task", help="task file (KernelBench format)")
    parser.add_argument("candidate", help="candidate file defining ModelNew")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--param", "-p", type=_param, action="append", default=[], metavar="NAME=VALUE",
                        help="tunable parameter passed to ModelNew (repeatable)")
    parser.add_argument("--trials", type=int, default=5, help="fresh input sets per shape (>= 5 for a verdict you publish)")
    parser.add_argument("--calls", type=int, default=50, help="timed calls per function")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before the candidate's process tree is killed")
    parser.add_argument("--gpu", type=int, default=0, help="index of the visible GPU to use")
    parser.add_argument("--no-baselines", action="store_true", help="skip eager and torch.compile timings")
    parser.add_argument("--no-compile-baseline", action="store_true", help="skip the torch.compile baseline only")
    add_archive_options(parser)
    parser.add_argument("--no-record", action="store_true", help="do not record the result in the archive")
    add_trust_options(parser)
    parser.set_defaults(func=run)


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    """``--policy`` and ``--no-static-check``: shared by eval, tune and bench."""
    parser.add_argument("--policy", choices=["strict", "hybrid"],
                        help="policy for task files that declare no POLICY (default strict; a file's own POLICY wins)")
    parser.add_argument("--no-static-check", action="store_true",
                        help="skip the static source check (red-team measurement of the run-time layers alone)")


def trust_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``[eval]`` settings the trust options ask for (empty when none given)."""
    out: dict[str, Any] = {}
    if getattr(args, "policy", None):
        out["policy"] = args.policy
    if getattr(args, "no_static_check", False):
        out["static_check"] = False
    return out


def _ms(stats: TimingStats | None) -> str:
    if stats is None:
        return "-"
    checked = f", {stats.checked_calls} outputs checked" if stats.checked_calls else ""
    return f"{stats.median_ms:.4f} ms (p10 {stats.p10_ms:.4f}, p90 {stats.p90_ms:.4f}, n={stats.n_calls}{checked})"


def print_result(result: EvalResult) -> None:
    print(f"verdict      {result.verdict.value.upper()} ({result.stage.value})")
    print(f"reason       {result.reason}")
    print(f"task         {result.task_name} [{result.dtype}, {result.policy}] {result.task_hash[:12]}")
    for shape in result.shapes:
        hidden = " hidden" if shape.hidden else ""
        print(f"shape        {shape.shape}{hidden}: {shape.trials} trials, max abs err {shape.max_abs_err:.3g}, "
              f"rel L2 err {shape.max_rel_l2:.3g}")
    timed = result.timed
    if timed is not None:
        print(f"candidate    {_ms(timed.candidate)}")
        print(f"eager        {_ms(timed.eager)}")
        print(f"compile      {_ms(timed.compiled)}")
        print(f"speedup      {format_speedup(result.speedup_eager)} vs eager, {format_speedup(result.speedup_compile)} vs torch.compile")
        if result.roofline_fraction is not None:
            print(f"roofline     {100 * result.roofline_fraction:.1f}% of the hardware floor "
                  f"({timed.roofline_ms:.4f} ms for {timed.bytes_moved / 1e6:.1f} MB, {timed.flops / 1e9:.2f} GFLOP)")
    if result.provenance and result.provenance.gpu_name:
        p = result.provenance
        print(f"gpu          {p.gpu_name} (sm {p.capability}), driver {p.driver}, torch {p.torch_version}, "
              f"CUDA {p.torch_cuda}, CuPy {p.cupy_version}, harness {p.harness_version}")
    for warning in result.warnings:
        print(f"warning      {warning}")
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in result.phases_s.items() if part_of(k) is None)
    print(f"wall         {result.wall_s:.1f} s" + (f" ({phases}; the rest: the parent's checks and waits)" if phases else ""))


def _record(args: argparse.Namespace, task: Any, result: EvalResult) -> None:
    """Keep the result: a hand-written candidate is a kernel like any other ("manual")."""
    from pathlib import Path

    from archive import Archive, KernelSpec

    source = Path(args.candidate).read_text()
    language = "load_inline" if "load_inline" in source else ("cupy" if "RawKernel" in source else "cuda")
    with Archive.open(archive_url(args)) as archive:
        recorded = archive.record(task, KernelSpec(source, dict(args.param), language=language,
                                                   operator="manual", proposer="manual"), result)
    result.warnings.append(f"recorded as kernel {recorded.kernel_id}, evaluation {recorded.evaluation_id} in {archive.url}")


def run(args: argparse.Namespace) -> int:
    from autotuner.evaluator import EvalConfig, evaluate
    from autotuner.tasks import load_task

    config = EvalConfig(trials=args.trials, timing_calls=args.calls, timeout_s=args.timeout, gpu=args.gpu,
                        baselines=not args.no_baselines, compile_baseline=not args.no_compile_baseline,
                        **trust_overrides(args))
    task = load_task(args.task, config.policy)  # once: the evaluator and the archive get this one
    result = evaluate(task, args.candidate, config=config, params=dict(args.param))
    if not args.no_record and result.verdict.value != "error":
        _record(args, task, result)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_result(result)
    if result.accepted:
        return EXIT_ACCEPTED
    return EXIT_REJECTED if result.verdict.value == "rejected" else EXIT_ERROR
