"""Compile a candidate's modules for every setting of a batch side by side, before the first is built.

A setting's modules compiled one after another as it was verified (each at its first use), while
the host's other cores idled. Two ways to know them ahead of time:

* declared: the rule proposer writes ``COMPILE_AHEAD`` (``autotuner.candidate.ahead_plan``), read
  from the text without running it;
* recorded: for a candidate that compiles as it runs (the decode seeds build a module per batch
  size, load path and cluster shape at their first call), each setting's constructor and forward
  run once on every shape of the task with ``compile_module`` recording instead of compiling
  (``autotuner.runtime.dry``): nothing launches, the outputs are dropped and nothing is checked.
  They run on a fresh import of the candidate (no stand-in reaches the module that is verified),
  each setting under its own status (a hang is charged to the setting that hung), and only for
  a candidate whose kernels all go through this runtime (Triton, CuPy's own kernels and
  load_inline launch outside it: no dry pass for those).

Either way the modules then compile on a thread each (NVRTC runs with the GIL released) into the
in-process cache, where the verified runs find them. A failure here is never reported: the
candidate's own build reports it, with its context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autotuner.tasks import Task


# The child's status suffix while it runs setting i's dry runs ("candidate:I:ahead"): a child that
# hangs or dies there is run again without compile-ahead (evaluator/sandbox.py), since every
# setting is dry-run before the first is verified and none can be blamed yet.
AHEAD_PHASE = ":ahead"
# Kernel APIs that launch outside autotuner.runtime (a dry run could not keep them from running)
OTHER_LAUNCHERS = ("triton", "RawKernel", "RawModule", "ElementwiseKernel", "ReductionKernel", "load_inline")


def recorded_units(task: Task, model_new: type, param_sets: list[dict[str, Any]], seed: int,
                   device: str = "cuda", on_setting: Callable[[int], None] | None = None,
                   ) -> list[tuple[str, dict[str, Any], str | None]]:
    """What ``model_new`` compiles at each setting on each of the task's shapes: (source,
    defines, arch) per distinct ``compile_module`` call, from dry runs (``on_setting(i)`` before
    setting i's)."""
    import torch

    from autotuner.evaluator.inputs import DTYPE_BY_NAME, init_args, make_inputs
    from autotuner.runtime import dry

    with dry.recording() as units, torch.no_grad():
        for index, params in enumerate(param_sets):
            if on_setting is not None:
                on_setting(index)
            for shape in task.shapes:
                model = inputs = None
                try:
                    with task.shape(shape), torch.device(device):
                        model = model_new(*init_args(task, shape), **params)
                    model = model.to(device=device, dtype=DTYPE_BY_NAME[task.dtype]).eval()
                    inputs = make_inputs(task, shape, seed, device=device)
                    model(*inputs)
                except Exception:  # noqa: BLE001 - the verified build reports it, with its context
                    continue
                finally:
                    del model, inputs
    if device == "cuda":
        torch.cuda.synchronize()  # nothing launched; what the forwards' own PyTorch ops queued is done
        torch.cuda.empty_cache()
    return units


def compile_units(units: list[tuple[str, dict[str, Any], str | None]]) -> int:
    """Compile every unit (grouped by target) side by side; how many compiled."""
    from autotuner.runtime.compile import compile_ahead

    done = 0
    for arch in dict.fromkeys(arch for _, _, arch in units):
        done += compile_ahead([(source, defines) for source, defines, a in units if a == arch], arch=arch)
    return done


def compile_ahead_of_verify(task: Task, candidate_path: Path, candidate_text: str, param_sets: list[dict[str, Any]],
                            seed: int, phases: dict[str, float],
                            on_setting: Callable[[int], None] | None = None) -> float | None:
    """Declared units where the candidate declares them (two or more), else recorded ones where it
    calls ``compile_module`` itself and launches nothing another way; seconds taken, or None when
    nothing was tried. ``phases`` gets the dry runs' seconds (``compile_ahead.dry``)."""
    from autotuner.candidate import ahead_plan, import_candidate

    started = time.perf_counter()
    units, arch = ahead_plan(candidate_text, param_sets)
    if units or "COMPILE_AHEAD" in candidate_text:
        if len(units) < 2:
            return None  # one module: nothing to overlap
        compile_units([(source, defines, arch) for source, defines in units])
        return time.perf_counter() - started
    if "compile_module" not in candidate_text or any(name in candidate_text for name in OTHER_LAUNCHERS):
        return None
    try:
        fresh = import_candidate(candidate_path).ModelNew  # its own globals: no stand-in reaches the verified one
    except Exception:  # noqa: BLE001 - the verified import succeeded; a second that fails is the candidate's to report
        return None
    recorded = recorded_units(task, fresh, param_sets, seed, on_setting=on_setting)
    phases["compile_ahead.dry"] = time.perf_counter() - started
    compile_units(recorded)
    return time.perf_counter() - started
