"""``autotuner doctor``: is this machine ready, and what are its measured ceilings?"""

from __future__ import annotations

import argparse
import json
import shutil
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="GPU, driver, versions, measured peaks, NVRTC compile latency")
    parser.add_argument("--remeasure", action="store_true", help="measure the peaks again, ignoring the cache")
    parser.add_argument("--compiles", type=int, default=20, help="kernels compiled for the latency figures")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    report: dict = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "nvcc": shutil.which("nvcc")}
    try:
        import cupy

        report["cupy"] = cupy.__version__
    except ImportError:
        report["cupy"] = None
    if not torch.cuda.is_available():
        report["gpu"] = None
        if args.json:
            print(json.dumps(report))
        else:
            print(f"torch {report['torch']} (CUDA build: {report['torch_cuda'] or 'no'}), "
                  f"CuPy {report['cupy'] or 'not installed'}, nvcc {report['nvcc'] or 'not found'}")
            print("no CUDA GPU is visible: candidates cannot be compiled, verified or timed here.")
            print("Use a machine with an NVIDIA GPU, a CUDA build of PyTorch, and "
                  "pip install 'autotuner[cuda12]' (or [cuda13]).")
        return 1
    if report["cupy"] is None:
        print("error: CuPy is not installed: pip install 'autotuner[cuda12]' or 'autotuner[cuda13]'", file=sys.stderr)
        return 1

    from dataclasses import asdict

    from autotuner.evaluator.roofline import cached_peaks
    from autotuner.evaluator.timing import l2_flush_buffer, time_calls
    from autotuner.runtime.compile import cache_root
    from autotuner.runtime.device import device_facts
    from autotuner.runtime.latency import compile_latency, nvrtc_output_format

    facts = device_facts(0)
    peaks = cached_peaks(cache_root(), facts.driver, remeasure=args.remeasure)
    latency = compile_latency(args.compiles)
    nvrtc_output = nvrtc_output_format()
    flush = l2_flush_buffer(facts.l2_bytes)
    floor = time_calls(lambda: None, [[]], lambda j: None, calls=50, warmup=5, flush=flush)
    report.update(device=facts.to_json(), peaks=asdict(peaks),
                  compile_ms={k: asdict(v) for k, v in latency.items()}, nvrtc_output=nvrtc_output,
                  timer_floor_ms=floor.stats.median_ms)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"GPU        {facts.gpu_name} (sm_{facts.capability.replace('.', '')}, {facts.sm_count} SMs, "
          f"L2 {facts.l2_bytes / 2**20:.0f} MiB, {facts.total_memory_bytes / 2**30:.0f} GiB)")
    print(f"driver     {facts.driver}")
    print(f"torch      {facts.torch_version} (CUDA {facts.torch_cuda})")
    print(f"CuPy       {facts.cupy_version} (CUDA runtime {facts.cupy_cuda_runtime}, NVRTC {facts.nvrtc_version})")
    print(f"peaks      copy {peaks.copy_gbps:.0f} GB/s, fp32 GEMM {peaks.fp32_tflops:.1f} TFLOP/s, "
          f"bf16 GEMM {peaks.bf16_tflops:.0f} TFLOP/s (measured, cached per GPU)")
    notes = {"cubin": " (no JIT at load)", "ptx": " (the driver JIT-compiles it at load: counted in load_only)"}
    print(f"NVRTC      emits {nvrtc_output}{notes.get(nvrtc_output, '')}")
    for kind, stats in latency.items():
        print(f"NVRTC      {kind:<16} p50 {stats.p50_ms:8.2f} ms   p95 {stats.p95_ms:8.2f} ms   (n={stats.n})")
    print(f"timer      empty call {floor.stats.median_ms * 1e3:.1f} us (flush + sync + events overhead)")
    return 0
