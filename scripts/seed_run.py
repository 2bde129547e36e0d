#!/usr/bin/env python3
"""Run a seed on its task's default shape, once per parameter setting (for Nsight Compute on one
kernel: ``ncu -k regex:NAME python3 scripts/seed_run.py TASK SEED '{"PARAM": value}' ...``).

Each setting builds the seed's ``ModelNew`` from the task's init inputs, copies the reference's
weights into it, checks its output against the reference once (the line printed says so) and then
runs it ``SEED_RUN_CALLS`` more times (default 3), each preceded by nothing else: under ncu each
call is one profiled kernel with its caches flushed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from autotuner.evaluator.compare import compare_outputs, tolerances_for  # noqa: E402
from autotuner.evaluator.inputs import make_candidate, make_inputs, make_reference  # noqa: E402
from autotuner.tasks import discover_tasks, load_task, suite_dir  # noqa: E402
from evolution.proposers.seeds import seed_model  # noqa: E402


def main(argv: list[str]) -> int:
    sel = argv[0]  # a task file, a suite task's name, or a part of one path (tasks live in family folders)
    tasks = discover_tasks(suite_dir())
    found = ([Path(sel)] if Path(sel).is_file() else [t for t in tasks if t.stem == sel]
             or [t for t in tasks if sel in str(t)])
    if len(found) != 1:
        raise SystemExit(f"{sel!r} names {len(found)} suite tasks under {suite_dir()}: "
                         f"{[str(t.relative_to(suite_dir())) for t in found][:8]}; give a name or path that names one")
    task = load_task(found[0])
    cls = seed_model(argv[1])
    settings = [json.loads(a) for a in argv[2:]] or [{}]
    shape = task.default_shape
    reference = make_reference(task, shape, 7, device="cuda")
    inputs = make_inputs(task, shape, 11, "task", device="cuda")
    with torch.no_grad():
        ref = reference(*inputs)
        for params in settings:
            candidate, _ = make_candidate(task, shape, 7, cls, params, reference, device="cuda")
            out = candidate(*inputs)
            verdict = compare_outputs(out, ref, tolerances_for(task.dtype, task.tolerance))
            print(f"{params}: {'ok' if verdict.ok else verdict.reason}", flush=True)
            for _ in range(int(os.environ.get("SEED_RUN_CALLS", "3"))):
                candidate(*inputs)
            torch.cuda.synchronize()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
