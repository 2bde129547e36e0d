#!/usr/bin/env python3
"""Host time of a kernel launch (driver path against CuPy's) and of rules candidates' forwards.

The evaluator's timer opens its window before the forward runs, so the host's time to reach the
first launch is part of every measured call; this prints it per launch and per forward. Run on a
GPU machine from the repository root:

    python scripts/launch_bench.py [--tasks relu mean_dim0 softmax]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from autotuner.candidate import import_candidate  # noqa: E402
from autotuner.runtime import compile_module  # noqa: E402
from autotuner.tasks import discover_tasks, load_task, suite_dir  # noqa: E402
from evolution.proposers.rules import translate  # noqa: E402

TWELVE = r"""
extern "C" __global__ void twelve(const float* a, const float* b, float* c, float s, float t,
                                  long long n, long long m, long long k, int x, int y, int z, int vec) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] * s + b[i] * t + (float)(m + k + x + y + z + vec);
}
"""


def per_call_us(fn, calls: int) -> float:
    """Median host time of one call, the device idle when it starts (the timer's situation)."""
    for _ in range(20):
        fn()
    samples = []
    for _ in range(calls):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    torch.cuda.synchronize()
    return sorted(samples)[len(samples) // 2] * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=["relu", "mean_dim0", "softmax", "layernorm", "sdpa_bf16"])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--profile", action="store_true", help="cProfile each forward: where its host time goes")
    args = ap.parse_args()
    module = compile_module(TWELVE)
    kernel = module.kernel("twelve")
    a = torch.ones(256, device="cuda")
    c = torch.empty_like(a)
    call = (a, a, c, 1.0, 2.0, 256, 1, 2, 3, 4, 5, 1)
    driver = per_call_us(lambda: kernel(1, 256, *call), args.calls)
    cupy_path = per_call_us(lambda: kernel._launch_cupy(1, 256, call, 0), args.calls)
    print(f"device: {torch.cuda.get_device_name()}")
    print(f"launch, 12 arguments: driver path {driver:.1f} us, CuPy path {cupy_path:.1f} us")
    # the bare driver call two ways: ctypes (what the driver path uses) and CuPy's Cython wrapper
    import ctypes

    import cupy

    from autotuner.runtime.launch import _cu_launch_kernel, _raw_stream

    kernel(1, 256, *call)
    slots = kernel._local.slots
    handle, stream, params = kernel._handle, _raw_stream(0), ctypes.addressof(slots.params)
    fn = _cu_launch_kernel()
    bare_ctypes = per_call_us(lambda: fn(handle, 1, 1, 1, 256, 1, 1, 0, stream, slots.params, None), args.calls)
    bare_cupy = per_call_us(lambda: cupy.cuda.driver.launchKernel(handle, 1, 1, 1, 256, 1, 1, 0, stream, params, 0),
                            args.calls)
    print(f"bare cuLaunchKernel: ctypes {bare_ctypes:.1f} us, cupy.cuda.driver.launchKernel {bare_cupy:.1f} us")
    assert torch.all(c == 1.0 + 2.0 + 16.0), "the driver path computed a wrong result"
    paths = {p.stem: p for p in discover_tasks(str(suite_dir()))}
    for name in args.tasks:
        task = load_task(str(paths[name]))
        proposal = translate(task, 1).proposals[0]
        cand = Path(f"/tmp/launch_bench_{name}.py")
        cand.write_text(proposal.source)
        model = import_candidate(cand).ModelNew(*task.module.get_init_inputs(), **proposal.default_params).cuda()
        inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in task.module.get_inputs()]
        with torch.no_grad():
            ours = per_call_us(lambda: model(*inputs), max(50, args.calls // 5))
            eager_model = task.module.Model(*task.module.get_init_inputs()).cuda()
            eager = per_call_us(lambda: eager_model(*inputs), max(50, args.calls // 5))
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                for _ in range(200):
                    model(*inputs)
                prof.disable()
                torch.cuda.synchronize()
                pstats.Stats(prof).sort_stats("tottime").print_stats(12)
        launches = proposal.source.count(".launch(")
        print(f"{name}: forward host time {ours:.1f} us ({launches} launch sites in the source), eager {eager:.1f} us")


if __name__ == "__main__":
    main()
