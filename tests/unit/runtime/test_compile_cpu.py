"""What the runtime does without a GPU: define options and prelude, diagnostics, nvcc checks."""

import shutil

import pytest

from autotuner.errors import CompileError
from autotuner.runtime import nvcc_ptx, parse_diagnostics
from autotuner.runtime.compile import define_options, define_prelude

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")

GOOD = r"""
extern "C" __global__ void add(const float* a, float* b, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) b[i] += a[i] * BLOCK;
}
"""
BAD = "extern \"C\" __global__ void broken(float* a) {\n    a[0] = undefined_name;\n}\n"


def test_defines_become_options_not_text():
    assert define_options({"BLOCK": 256, "SCALE": 0.5, "FAST": True}) == ("-DBLOCK=256", "-DFAST=1", "-DSCALE=0.5")
    with pytest.raises(ValueError):
        define_options({"not an identifier": 1})
    with pytest.raises(ValueError):
        define_options({"X": "two words"})


def test_define_prelude_is_the_options_as_text():
    assert define_prelude({"BLOCK": 256, "SCALE": 0.5, "FAST": True}) == (
        "#define BLOCK 256\n#define FAST 1\n#define SCALE 0.5\n#line 1\n")
    assert define_prelude({}) == "" and define_prelude(None) == ""
    with pytest.raises(ValueError):
        define_prelude({"X": "two words"})


def test_nvrtc_and_nvcc_logs_parse_to_lines():
    log = ('/tmp/x/kernel.cu(12): error: identifier "foo" is undefined\n'
           "kernel.cu(3): warning #177-D: variable \"y\" was declared but never referenced\n"
           "1 error detected in the compilation")
    diags = parse_diagnostics(log)
    assert [(d.line, d.severity) for d in diags] == [(12, "error"), (3, "warning")]
    assert "foo" in diags[0].message


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_to_ptx(arch):
    ptx = nvcc_ptx(GOOD, arch, options=("-std=c++17", "-DBLOCK=4"))
    assert ".entry add" in ptx


@needs_nvcc
def test_compile_error_names_the_line():
    with pytest.raises(CompileError) as info:
        nvcc_ptx(BAD, "sm_90")
    errors = [d for d in info.value.diagnostics if d.severity == "error"]
    assert errors and errors[0].line == 2
    assert "undefined_name" in errors[0].message
    assert "line 2" in str(info.value)


@needs_nvcc
def test_prelude_compiles_like_define_options():
    """Same PTX as -D options, and #line 1 keeps the candidate's line numbers in errors."""
    as_options = nvcc_ptx(GOOD, "sm_90", options=("-std=c++17", "-DBLOCK=4"))
    as_text = nvcc_ptx(define_prelude({"BLOCK": 4}) + GOOD, "sm_90")
    assert as_text == as_options
    with pytest.raises(CompileError) as info:
        nvcc_ptx(define_prelude({"BLOCK": 4, "VEC": 2}) + BAD, "sm_90")
    assert [d.line for d in info.value.diagnostics if d.severity == "error"] == [2]


def test_compile_time_and_cupy_import_are_counted(monkeypatch):
    """The evaluator reports these as parts of a candidate's build (bench evaluator)."""
    import contextlib
    import sys
    import time
    import types

    import torch

    from autotuner.runtime import compile as compile_mod

    class FakeRawModule:
        def __init__(self, code, options, backend):
            self.code = code

        def compile(self):
            time.sleep(0.02)

    fake = types.ModuleType("cupy")
    fake.RawModule = FakeRawModule
    fake.cuda = types.SimpleNamespace(Device=lambda d: contextlib.nullcontext(),
                                      compiler=types.SimpleNamespace(CompileException=RuntimeError))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(compile_mod, "COSTS", {"cupy_import": 0.0, "compile": 0.0})
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})
    assert compile_mod.COSTS["compile"] >= 0.02
    assert compile_mod.COSTS["cupy_import"] >= 0.0
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})  # memory cache
    assert compile_mod.COSTS["compile"] < 0.04
    compile_mod.clear_memory_cache()
