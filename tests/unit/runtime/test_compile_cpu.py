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


def _fake_cupy(monkeypatch, tmp_path, compile_program, raw_module):
    """A stand-in CuPy whose NVRTC calls ``compile_program(program, options)`` (the program is
    the source text) and whose ``RawModule`` is ``raw_module``; this GPU is sm_90."""
    import contextlib
    import sys
    import types

    import torch

    class NVRTCError(Exception):
        pass

    def program_log(program):
        return 'k.cu(2): error: identifier "undefined_name" is undefined'

    nvrtc = types.SimpleNamespace(
        NVRTCError=NVRTCError, getVersion=lambda: (13, 0), createProgram=lambda code, name, h, i: code,
        compileProgram=compile_program, getCUBIN=lambda program: b"\x7fELF cubin",
        getProgramLog=program_log, destroyProgram=lambda program: None)
    fake = types.ModuleType("cupy")
    fake.RawModule = raw_module
    fake.cuda = types.SimpleNamespace(Device=lambda d: contextlib.nullcontext(), nvrtc=nvrtc,
                                      compiler=types.SimpleNamespace(CompileException=RuntimeError))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nvrtc", nvrtc)
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    return NVRTCError


def test_compile_time_and_cupy_import_are_counted(monkeypatch, tmp_path):
    """The evaluator reports these as parts of a candidate's build (bench evaluator)."""
    import time

    from autotuner.runtime import compile as compile_mod

    class FakeRawModule:
        def __init__(self, code=None, options=(), backend="nvrtc", path=None):
            self.path = path

    _fake_cupy(monkeypatch, tmp_path, lambda program, options: time.sleep(0.02), FakeRawModule)
    monkeypatch.setattr(compile_mod, "COSTS", {"cupy_import": 0.0, "compile": 0.0})
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})
    assert compile_mod.COSTS["compile"] >= 0.02
    assert compile_mod.COSTS["cupy_import"] >= 0.0
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})  # memory cache
    assert compile_mod.COSTS["compile"] < 0.04
    compile_mod.clear_memory_cache()


def test_plain_compiles_go_to_nvrtc_for_this_gpu_with_rawmodules_options(monkeypatch, tmp_path):
    """No arch asked: NVRTC straight to a cubin for this GPU's sm_XY with the options
    RawModule would add, cached on disk and loaded by path; where NVRTC refuses, RawModule
    compiles the source itself, and its error is the one raised."""
    from autotuner.runtime import compile as compile_mod

    calls, built = [], []

    def compile_program(program, options):
        calls.append(list(options))
        if "needs_cupy" in program or "broken" in program:
            raise error_type()

    class FakeRawModule:
        def __init__(self, code=None, options=(), backend="nvrtc", path=None):
            built.append("path" if path else "code")
            self.code = code

        def compile(self):
            if "broken" in self.code:
                raise RuntimeError("k.cu(2): error: identifier \"undefined_name\" is undefined")

    error_type = _fake_cupy(monkeypatch, tmp_path, compile_program, FakeRawModule)
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})
    assert calls == [["-std=c++17", "--device-as-default-execution-space", "-ftz=true", "-arch=sm_90"]]
    assert built == ["path"]
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7})
    assert len(calls) == 1 and built == ["path", "path"], "the disk cache serves the second build"
    compile_mod.compile_module('// needs_cupy\nextern "C" __global__ void k() {}')
    assert built[-1] == "code", "NVRTC refused: RawModule compiled it"
    with pytest.raises(CompileError) as err:
        compile_mod.compile_module('extern "C" __global__ void broken() {\n  undefined_name;\n}')
    assert err.value.diagnostics[0].line == 2
    compile_mod.clear_memory_cache()


def test_arch_names_a_target_of_this_gpu():
    """An arch-specific target (sm_90a: wgmma) on another GPU is a compile error that says so,
    before NVRTC runs; a malformed one is the caller's bug."""
    from autotuner.runtime.compile import check_arch

    check_arch("sm_90a", (9, 0))
    check_arch("sm_100a", (10, 0))
    with pytest.raises(CompileError, match="built for sm_90a only.*sm_80"):
        check_arch("sm_90a", (8, 0))
    with pytest.raises(ValueError, match="not an NVRTC target"):
        check_arch("compute_90a", (9, 0))


def test_arch_path_compiles_through_nvrtc_once_and_loads_the_cubin(monkeypatch, tmp_path):
    """compile_module(arch=...) bypasses RawModule's own target: NVRTC gets ``-arch=sm_90a``,
    the cubin is cached on disk (a second process would not compile again), the module is
    RawModule(path=cubin); an NVRTC error comes back as a CompileError with the line."""
    import contextlib
    import sys
    import types

    import torch

    from autotuner.runtime import compile as compile_mod

    calls = []

    class NVRTCError(Exception):
        pass

    def compile_program(program, options):
        calls.append(list(options))
        if "broken" in program:
            raise NVRTCError()

    nvrtc = types.SimpleNamespace(
        NVRTCError=NVRTCError, getVersion=lambda: (13, 0), createProgram=lambda code, name, h, i: code,
        compileProgram=compile_program, getCUBIN=lambda program: b"\x7fELF cubin",
        getProgramLog=lambda program: "k.cu(2): error: identifier \"undefined_name\" is undefined",
        destroyProgram=lambda program: None)
    loaded = []

    class FakeRawModule:
        def __init__(self, code=None, options=(), backend="nvrtc", path=None):
            assert path is not None and code is None, "the arch path loads a cubin file"
            loaded.append(path)

    fake = types.ModuleType("cupy")
    fake.RawModule = FakeRawModule
    fake.cuda = types.SimpleNamespace(Device=lambda d: contextlib.nullcontext(), nvrtc=nvrtc,
                                      compiler=types.SimpleNamespace(CompileException=RuntimeError))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupy.cuda", fake.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nvrtc", nvrtc)
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7}, arch="sm_90a")
    assert calls == [["-std=c++17", "-ftz=true", "-arch=sm_90a"]]  # -ftz=true: what CuPy adds to RawModule's
    assert len(loaded) == 1 and loaded[0].endswith("_sm_90a.cubin")
    assert open(loaded[0], "rb").read() == b"\x7fELF cubin"
    compile_mod.clear_memory_cache()
    compile_mod.compile_module('extern "C" __global__ void k() {}', defines={"BLOCK": 7}, arch="sm_90a")
    assert len(calls) == 1 and len(loaded) == 2, "the disk cache serves the second build"
    with pytest.raises(CompileError) as err:
        compile_mod.compile_module('extern "C" __global__ void broken() {\n  undefined_name;\n}', arch="sm_90a")
    assert err.value.diagnostics[0].line == 2
    compile_mod.clear_memory_cache()
