"""Recorded compiles (autotuner/runtime/dry.py): what compile_module does while the evaluator
learns a candidate's modules from a dry run, without a GPU or a compiler."""

from __future__ import annotations

import types

from autotuner.runtime import allow_nonportable_clusters, compile_module, dry, max_active_clusters, pdl_launch
from autotuner.runtime.pdl import launch_ex


def test_recording_returns_stand_ins_and_records_each_distinct_compile_once() -> None:
    with dry.recording() as units:
        a = compile_module("// src", defines={"NB": 1})
        again = compile_module("// src", defines={"NB": 1})
        wg = compile_module("// src", defines={"NB": 4}, arch="sm_90a")
        compile_module("// src", defines={"NB": 8}, options=("-O3",))  # compile_ahead builds default options only
        kernel = a.kernel("k")
        kernel.function.max_dynamic_shared_size_bytes = 100 * 1024  # what seeds set before a launch
        a.launch("k", grid=(1,), block=(32,), args=())
        kernel((1,), (32,))
        pdl_launch(a, "k", grid=(1,), block=(32,), args=())
        launch_ex(kernel, (1,), (32,), ())
        assert allow_nonportable_clusters(kernel) is None and max_active_clusters(kernel, 128, 0, 16) is None
    assert units == [("// src", {"NB": 1}, None), ("// src", {"NB": 4}, "sm_90a")]
    assert all(dry.is_dry(m) for m in (a, again, wg, kernel))
    assert kernel.function.max_dynamic_shared_size_bytes == 100 * 1024
    assert dry.record("// src", {}, None, ()) is None  # recording is over


def test_recordings_nest_and_each_keeps_its_own_calls() -> None:
    with dry.recording() as outer:
        compile_module("// a")
        with dry.recording() as inner:
            compile_module("// b")
        compile_module("// c")
    assert [u[0] for u in outer] == ["// a", "// c"] and [u[0] for u in inner] == ["// b"]


def test_a_stand_in_kept_past_the_recording_becomes_the_real_module(monkeypatch) -> None:
    """A candidate that caches its modules at module level keeps the dry run's stand-ins: used
    after the recording they compile for real (a cache hit once compiled ahead), replay what was
    written to their kernels' functions, and launch."""
    import autotuner.runtime.compile as compile_

    launched, compiled, memo = [], [], {}
    real_compile = compile_.compile_module

    def fake_compile(source, *, defines=None, options=compile_.DEFAULT_OPTIONS, arch=None):
        if dry.active():
            return real_compile(source, defines=defines, options=options, arch=arch)  # records
        key = tuple(sorted((defines or {}).items()))
        if key not in memo:  # as compile_module's in-process cache
            compiled.append(dict(defines or {}))
            memo[key] = _RealModule(dict(defines or {}), launched)
        return memo[key]

    monkeypatch.setattr(compile_, "compile_module", fake_compile)
    cache = {}
    with dry.recording():
        module = cache.setdefault("m", compile_.compile_module("// src", defines={"N": 1}))
        module.kernel("k").function.max_dynamic_shared_size_bytes = 100 * 1024
        module.launch("k", (1,), (32,), ())
        pdl_launch(module, "k", (1,), (32,), ())
    assert not compiled and not launched  # nothing compiled or launched while recording
    kept = cache["m"]
    kept.launch("k", (2,), (64,), (7,))
    pdl_launch(kept, "k", (3,), (64,), (8,))
    assert compiled == [{"N": 1}]
    assert launched == [({"N": 1}, (2,), (64,), (7,), 100 * 1024), ({"N": 1}, (3,), (64,), (8,), 100 * 1024)]
    assert kept.kernel("k").function.max_dynamic_shared_size_bytes == 100 * 1024
    assert not dry.is_dry(dry.resolve(kept)) and dry.is_dry(kept)


class _RealKernel:
    def __init__(self, defines: dict, launched: list) -> None:
        self.defines, self.launched = defines, launched
        self.function = types.SimpleNamespace(max_dynamic_shared_size_bytes=48 * 1024)

    def __call__(self, grid, block, *args, shared_mem=0):  # noqa: ANN001, ANN204
        self.launched.append((self.defines, grid, block, args, self.function.max_dynamic_shared_size_bytes))


class _RealModule:
    def __init__(self, defines: dict, launched: list) -> None:
        self.defines, self.launched, self.kernels = defines, launched, {}

    def kernel(self, name: str) -> _RealKernel:
        return self.kernels.setdefault(name, _RealKernel(self.defines, self.launched))

    def launch(self, name, grid, block, args, shared_mem=0):  # noqa: ANN001, ANN201
        self.kernel(name)(grid, block, *args, shared_mem=shared_mem)


def test_only_plain_define_values_are_recorded() -> None:
    """compile_ahead's threads format the defines: a candidate's own object there could run its
    __str__ off the thread that is watched, so such a compile is not recorded (it compiles when built)."""

    class Sneaky(int):
        def __str__(self) -> str:  # would run on a compile-ahead thread
            return "64"

    with dry.recording() as units:
        stand_in = compile_module("// src", defines={"BLOCK": Sneaky(64)})
        compile_module("// src", defines={"BLOCK": 64, "FAST": True, "NAME": "x", "SCALE": 0.5})
    assert dry.is_dry(stand_in)
    assert units == [("// src", {"BLOCK": 64, "FAST": True, "NAME": "x", "SCALE": 0.5}, None)]
