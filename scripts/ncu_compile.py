#!/usr/bin/env python3
"""Run a task's torch.compile baseline a few times (for Nsight Compute on Inductor's kernels),
or with --eager its eager reference (the library kernels it calls: cuBLAS, cuDNN, PyTorch's own).

    TORCH_LOGS=output_code ncu -k regex:triton -s 3 -c 1 python3 scripts/ncu_compile.py TASK
    ncu -k regex:gemv -s 2 -c 1 python3 scripts/ncu_compile.py gemv_gate_up_bf16 --eager
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from autotuner.evaluator.inputs import make_inputs, make_reference  # noqa: E402
from autotuner.tasks import discover_tasks, load_task, suite_dir  # noqa: E402


def main() -> None:
    sel = sys.argv[1]
    eager = "--eager" in sys.argv[2:]
    path = Path(sel) if Path(sel).is_file() else next(t for t in discover_tasks(suite_dir()) if sel in str(t))
    task = load_task(path)
    model = make_reference(task, task.default_shape, 1)
    inputs = make_inputs(task, task.default_shape, 2)
    compiled = model if eager else torch.compile(model)
    with torch.no_grad():
        for _ in range(6):
            compiled(*inputs)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
