"""Compile-ahead from dry runs (autotuner/evaluator/ahead.py), on the CPU.

A candidate that compiles as it runs (a module per input shape, as the decode seeds build one per
batch size and load path) has its modules recorded by one dry construction and forward per
setting and shape; the decode GEMV seed, run for real on the CPU emulator, compiles exactly the
modules its dry runs recorded.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from autotuner.evaluator.ahead import compile_ahead_of_verify, recorded_units
from autotuner.evaluator.inputs import make_candidate, make_inputs, make_reference
from autotuner.tasks import load_task

ROOT = Path(__file__).resolve().parents[3]

TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


n = 64
SHAPES = [{"name": "odd", "n": 37, "hidden": True}, {"name": "wide", "n": 256}]
FAMILY = "activation"


def get_inputs():
    return [torch.randn(4, n)]


def get_init_inputs():
    return []
'''

CANDIDATE = '''
import torch
import torch.nn as nn
from autotuner.runtime import compile_module, pdl_launch

SOURCE = "extern \\"C\\" __global__ void k(float* x) {}"


class ModelNew(nn.Module):
    def __init__(self, BLOCK=128):
        super().__init__()
        if BLOCK == 0:
            raise ValueError("no such block")
        self.block = BLOCK
        self.modules_ = {}

    def forward(self, x):
        n = x.shape[-1]
        if n not in self.modules_:  # a module per row length, built at its first call
            self.modules_[n] = compile_module(SOURCE, defines={"BLOCK": self.block, "N": n, "VEC": int(n % 4 == 0)})
        module = self.modules_[n]
        module.kernel("k").function.max_dynamic_shared_size_bytes = 1024
        pdl_launch(module, "k", grid=(1,), block=(self.block,), args=(x,))
        return torch.empty_like(x)
'''


def _candidate(tmp_path: Path, text: str = CANDIDATE) -> tuple[object, type, str]:
    from autotuner.candidate import import_candidate

    (tmp_path / "task.py").write_text(TASK)
    (tmp_path / "cand.py").write_text(text)
    return load_task(tmp_path / "task.py"), import_candidate(tmp_path / "cand.py").ModelNew, text


def test_dry_runs_record_every_settings_modules_on_every_shape(tmp_path: Path) -> None:
    task, model_new, _ = _candidate(tmp_path)
    units = recorded_units(task, model_new, [{"BLOCK": 128}, {"BLOCK": 0}, {"BLOCK": 256}], seed=1, device="cpu")
    defines = [u[1] for u in units]
    # BLOCK 0 raises in its constructor: skipped, the verified build reports it
    assert defines == [{"BLOCK": b, "N": n, "VEC": int(n % 4 == 0)} for b in (128, 256) for n in (64, 37, 256)]
    assert all(arch is None for _, _, arch in units)


def test_recorded_modules_are_compiled_ahead_and_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import autotuner.evaluator.ahead as ahead

    cached = CANDIDATE.replace("class ModelNew", "CACHE = {}\n\n\nclass ModelNew").replace(
        "        module = self.modules_[n]", "        module = CACHE.setdefault(n, self.modules_[n])")
    task, model_new, text = _candidate(tmp_path, cached)
    compiled, settings = [], []
    monkeypatch.setattr(ahead, "recorded_units", lambda *a, **k: recorded_units(*a, **k, device="cpu"))
    monkeypatch.setattr(ahead, "compile_units", lambda units: compiled.extend(units) or len(units))
    phases: dict[str, float] = {}
    seconds = compile_ahead_of_verify(task, tmp_path / "cand.py", text, [{"BLOCK": 128}, {"BLOCK": 64}], 1, phases,
                                      settings.append)
    assert seconds is not None and seconds >= phases["compile_ahead.dry"] >= 0
    assert [(u[1]["BLOCK"], u[1]["N"]) for u in compiled] == [(b, n) for b in (128, 64) for n in (64, 37, 256)]
    assert settings == [0, 1]  # each setting's dry runs announced (the worker's status: a hang is that setting's)
    # the dry runs ran on a fresh import: the module being verified holds no stand-in
    assert sys.modules[model_new.__module__].CACHE == {}
    # a candidate that declares its compiles is not run dry; nor one that never calls compile_module,
    # nor one with kernels launched outside the runtime (a dry run could not stop them)
    assert compile_ahead_of_verify(task, tmp_path / "cand.py", text + "\nCOMPILE_AHEAD = None\n", [{}], 1, {}) is None
    assert compile_ahead_of_verify(task, tmp_path / "cand.py", "import torch\n", [{}], 1, {}) is None
    assert compile_ahead_of_verify(task, tmp_path / "cand.py", text + "\n# cupy.RawKernel\n", [{}], 1, {}) is None


def test_nothing_launches_while_recording() -> None:
    from autotuner.runtime import dry
    from autotuner.runtime.launch import Kernel

    kernel = Kernel("k", None, None)  # no driver function: launching it for real would raise
    with dry.recording():
        kernel((1,), (32,))
    with pytest.raises(Exception):
        kernel((1,), (32,))


def test_the_decode_gemv_seed_compiles_what_its_dry_runs_recorded(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "rules"))
    import cuda_emu

    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    import autotuner.runtime
    from evolution.proposers.seeds import seed_model

    source = (ROOT / "kernels" / "tasks" / "decode" / "gemv_qkv_bf16.py").read_text()
    source = source.replace("in_features = 2048", "in_features = 512").replace("out_features = 3072", "out_features = 96")
    source += '\nSHAPES = [{"name": "b3_ragged", "batch_size": 3, "in_features": 260, "hidden": True},\n' \
              '          {"name": "b8", "batch_size": 8, "out_features": 40}]\n'
    (tmp_path / "gemv.py").write_text(source)
    task = load_task(tmp_path / "gemv.py")
    assert len(task.shapes) == 3
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a, **k: types.SimpleNamespace(multi_processor_count=2))
    settings = [{}, {"UPW": 2, "XSMEM": 1}]
    dry_cls = seed_model("decode_gemv_bf16")  # bound to the runtime's compile_module: records while dry
    recorded = recorded_units(task, dry_cls, settings, seed=3, device="cpu")

    built = []

    def emulated(source_: str, *, defines=None, **kwargs):  # noqa: ANN001, ANN202
        built.append((source_, dict(defines or {}), kwargs.get("arch")))
        return cuda_emu.compile_module(source_, defines=defines, **kwargs)

    monkeypatch.setattr(autotuner.runtime, "compile_module", emulated)
    real_cls = seed_model("decode_gemv_bf16")  # bound to the emulator: compiles and runs on the CPU
    with torch.no_grad():
        for params in settings:
            for shape in task.shapes:
                reference = make_reference(task, shape, 5, device="cpu")
                model, _ = make_candidate(task, shape, 5, real_cls, params, reference, device="cpu")
                inputs = make_inputs(task, shape, 7, device="cpu")
                torch.testing.assert_close(model(*inputs).float(), reference(*inputs).float(), atol=2e-2, rtol=2e-2)
    distinct = list(dict.fromkeys((s, tuple(sorted(d.items())), a) for s, d, a in built))
    assert len(distinct) >= 4  # batch sizes 1, 3 and 8, the aligned and the any-alignment paths, two settings
    assert sorted(distinct) == sorted((s, tuple(sorted(d.items())), a) for s, d, a in recorded)
