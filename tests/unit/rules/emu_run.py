"""Child process of ``cuda_emu.run_candidates``: verify candidates on the CPU emulator.

``python emu_run.py JOBS.json`` (a list of ``[task, candidate, params, max_elems]``) prints one
JSON line per job, in order: ``{"job": i, "ok": bool, "reason": str, "shapes": [...]}``. The checks mirror the evaluator's
``verify_shape``: the candidate runs first under the op watch (the task's policy, outputs of
``torch.empty`` poisoned), on its own copy of fresh inputs, then the reference; outputs are
compared at the task's tolerances. Shapes whose inputs exceed MAX_ELEMS elements are skipped
(the default shape usually is: it is sized for a GPU).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import autotuner.runtime  # noqa: E402
import cuda_emu  # noqa: E402

LAWS = ("task", "signed", "wide")


def _elements(task, shape) -> int:  # noqa: ANN001
    with task.shape(shape) as mod, torch.device("meta"):
        inputs = mod.get_inputs()
    return sum(t.numel() for t in inputs if isinstance(t, torch.Tensor))


def main() -> int:
    autotuner.runtime.compile_module = cuda_emu.compile_module
    torch.cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(
        multi_processor_count=2, major=9, minor=0, shared_memory_per_multiprocessor=228 * 1024)
    torch.cuda.current_device = lambda: 0
    jobs = json.loads(Path(sys.argv[1]).read_text())
    for i, (task_path, cand_path, params, max_elems) in enumerate(jobs):
        cuda_emu.LAUNCHED.clear()
        try:
            report = check(task_path, cand_path, params, int(max_elems))
        except Exception as exc:  # noqa: BLE001 - reported as this job's failure
            report = {"ok": False, "reason": f"{type(exc).__name__}: {exc}"[:2000], "shapes": []}
        report["job"] = i
        print(json.dumps(report), flush=True)
    return 0


def check(task_path: str, cand_path: str, params: dict, max_elems: int) -> dict:
    from autotuner.candidate import import_candidate
    from autotuner.evaluator.compare import compare_outputs, tolerances_for
    from autotuner.evaluator.inputs import clone_inputs, inputs_unchanged, make_candidate, make_inputs, make_reference
    from autotuner.evaluator.watch import OpWatch
    from autotuner.tasks import load_task

    task = load_task(task_path)
    module = import_candidate(Path(cand_path))
    tol = tolerances_for(task.dtype, task.tolerance)
    report = {"ok": True, "reason": "", "shapes": []}
    for shape in task.shapes:
        if _elements(task, shape) > max_elems:
            continue
        for trial, law in enumerate(LAWS):
            if law != "task" and law not in task.distributions:
                continue
            seed = 1000 + trial
            reference = make_reference(task, shape, seed, device="cpu")
            candidate, _ = make_candidate(task, shape, seed, module.ModelNew, params, reference, device="cpu")
            inputs = make_inputs(task, shape, seed + 7, law, device="cpu")
            mine = clone_inputs(inputs)
            where = f"shape {shape.name} ({law})"
            with torch.no_grad():
                watch = OpWatch(task.policy)
                with watch:
                    out = candidate(*mine)
                if watch.forbidden:
                    forbidden = sorted(set(watch.forbidden))[:4]
                    return dict(report, ok=False, reason=f"{where}: PyTorch ops outside the policy {forbidden}")
                changed = inputs_unchanged(inputs, mine)
                ref = reference(*inputs)
            if changed:
                return dict(report, ok=False, reason=f"{where}: wrote into inputs {changed}")
            cmp = compare_outputs(out, ref, tol)
            if not cmp.ok:
                return dict(report, ok=False, reason=f"{where}: {cmp.reason}")
            report["shapes"].append({"shape": shape.name, "law": law, "max_abs_err": cmp.max_abs_err,
                                     "rel_l2": cmp.rel_l2})
    report["kernels"] = sorted(cuda_emu.LAUNCHED)
    cuda_emu.LAUNCHED.clear()
    if not report["shapes"]:
        report.update(ok=False, reason=f"no shape small enough (max {max_elems} input elements)")
    return report


if __name__ == "__main__":
    sys.exit(main())
