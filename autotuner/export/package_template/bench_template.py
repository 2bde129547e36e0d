"""Time each op at its task's default shape: the kernel vs PyTorch eager vs torch.compile.

    python bench.py [--calls 50] [--op NAME ...]

CUDA-event medians on fresh inputs, beside the archive's own measurements (metadata.json).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys

import torch

import PACKAGE_NAME as pkg
from PACKAGE_NAME import METADATA

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def median_ms(fn, calls: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(calls):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def case(op: str):
    meta = METADATA["ops"][op]
    task = importlib.import_module(f"PACKAGE_NAME.tasks.{op}")
    dtype = DTYPES[meta["dtype"]]
    torch.manual_seed(0)
    with torch.device("cuda"):
        inputs = [x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in task.get_inputs()]
        init = list(task.get_init_inputs())
        model = task.Model(*init).to(dtype=dtype).eval()
    init += [a["default"] for a in meta["init_args"][len(init):]]
    state = model.state_dict()
    return (*inputs, *(state[w] for w in meta["weights"]), *init), model, inputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--op", nargs="*", default=sorted(METADATA["ops"]))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench.py times kernels: it needs a CUDA GPU", file=sys.stderr)
        return 1
    print(f"PACKAGE_NAME on {torch.cuda.get_device_name()} (verified on {METADATA['gpu']})")
    print(f"{'op':<28} {'path':<10} {'kernel ms':>10} {'eager ms':>10} {'compile ms':>10} {'vs eager':>9} "
          f"{'vs compile':>10} {'archive vs eager':>17}")
    for op in args.op:
        op_args, model, inputs = case(op)
        fn = getattr(torch.ops.PACKAGE_NAME, op)
        path = pkg.explain(op, *op_args)
        with torch.no_grad():
            kernel = median_ms(lambda: fn(*op_args), args.calls)
            eager = median_ms(lambda: model(*inputs), args.calls)
            compiled_model = torch.compile(model)
            compiled = median_ms(lambda: compiled_model(*inputs), args.calls)
        archived = METADATA["ops"][op].get("speedup_eager")
        print(f"{op:<28} {path[:10]:<10} {kernel:>10.4f} {eager:>10.4f} {compiled:>10.4f} {eager / kernel:>8.2f}x "
              f"{compiled / kernel:>9.2f}x {'-' if archived is None else f'{archived:.2f}x':>17}")
        del op_args, model, inputs
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
