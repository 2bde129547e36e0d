"""Compile CUDA C through NVRTC (loaded as CuPy ``RawModule``), cached in memory and on disk.

NVRTC compiles a kernel in tens of milliseconds where ``torch.utils.cpp_extension.load_inline``
takes tens of seconds; that difference is what lets a search try thousands of candidates an
hour. CuPy keeps compiled modules on disk keyed by source, options, architecture and NVRTC
version (``CUPY_CACHE_DIR``, set here to the autotuner cache unless the user set it); this
module adds an in-process cache and structured compile errors.

Defines reach NVRTC as ``#define`` lines ahead of the source (then ``#line 1``), not as ``-D``
options: CuPy keys a one-off empty-file NVRTC compile (about 25 ms) by the option list, so
options that differ per candidate paid it on every cold compile. The cubin and the diagnostics'
line numbers are the same either way.

Every compile goes through NVRTC directly to a cubin for the GPU (its plain ``sm_XY``, with the
options ``RawModule`` adds, or an arch-specific target such as ``arch="sm_90a"``: Hopper's wgmma
and setmaxnreg exist only there), cached on disk beside CuPy's cache and loaded with
``RawModule(path=...)``, so kernels are the same ``RawKernel`` objects either way. CuPy's own
compile path spent several times NVRTC's time around it; it remains the fallback where NVRTC
cannot target the GPU by name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autotuner.errors import CompileError, CupyMissingError, Diagnostic
from autotuner.runtime import dry
from autotuner.runtime.signature import KernelSignature, parse_kernels

DEFAULT_OPTIONS: tuple[str, ...] = ("-std=c++17",)
_DIAG_RE = re.compile(r"\((\d+)\):\s*(error|warning|catastrophic error)\s*:?\s*(.*)")
_DEFINE_NAME_RE = re.compile(r"^[A-Za-z_]\w*$")
_lock = threading.Lock()
_memo: dict[tuple[str, tuple[str, ...], int], "CudaModule"] = {}
# Seconds this process spent importing CuPy and compiling (NVRTC or CuPy's disk cache): the
# evaluator reports them as parts of a candidate's build.
COSTS: dict[str, float] = {"cupy_import": 0.0, "compile": 0.0}


def cache_root() -> Path:
    """Where the autotuner keeps caches (compiled kernels, peaks, baselines)."""
    root = Path(os.environ.get("AUTOTUNER_CACHE_DIR", Path.home() / ".cache" / "autotuner"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _cupy() -> Any:
    os.environ.setdefault("CUPY_CACHE_DIR", str(cache_root() / "nvrtc"))
    started = time.perf_counter()
    try:
        import cupy
    except ImportError:
        raise CupyMissingError() from None
    COSTS["cupy_import"] += time.perf_counter() - started
    return cupy


def define_options(defines: Mapping[str, Any] | None) -> tuple[str, ...]:
    """``{"BLOCK": 256}`` -> ``("-DBLOCK=256",)``: the defines' canonical form (cache keys, nvcc)."""
    out = []
    for name, value in sorted((defines or {}).items()):
        if not _DEFINE_NAME_RE.match(name):
            raise ValueError(f"define name {name!r} is not a C identifier")
        if isinstance(value, bool):
            value = int(value)
        text = repr(value) if isinstance(value, float) else str(value)
        if not text or any(c.isspace() for c in text):
            raise ValueError(f"define {name}={value!r}: value must be one token")
        out.append(f"-D{name}={text}")
    return tuple(out)


def define_prelude(defines: Mapping[str, Any] | None) -> str:
    """``{"BLOCK": 256}`` -> ``"#define BLOCK 256\\n#line 1\\n"``: what ``-DBLOCK=256`` does, as text.

    ``#line 1`` restarts the numbering, so diagnostics keep the candidate's line numbers; no
    defines gives ``""`` (the source, and its disk-cache key, stay as they were).
    """
    options = define_options(defines)
    if not options:
        return ""
    lines = [f"#define {opt[2:].replace('=', ' ', 1)}" for opt in options]
    return "\n".join(lines) + "\n#line 1\n"


def parse_diagnostics(log: str) -> list[Diagnostic]:
    """NVRTC / nvcc log -> diagnostics with the line in the candidate's source."""
    diagnostics = []
    for line in log.splitlines():
        match = _DIAG_RE.search(line)
        if match:
            severity = "error" if "error" in match.group(2) else "warning"
            diagnostics.append(Diagnostic(int(match.group(1)), severity, match.group(3).strip()))
    return diagnostics


class CudaModule:
    """A compiled module: look kernels up by name and launch them on the current stream."""

    def __init__(self, raw_module: Any, source: str, options: tuple[str, ...]) -> None:
        self.raw = raw_module
        self.source = source
        self.options = options
        self.signatures: dict[str, KernelSignature] = parse_kernels(source)
        self._kernels: dict[str, Any] = {}

    def kernel(self, name: str) -> "Kernel":
        from autotuner.runtime.launch import Kernel

        if name not in self._kernels:
            try:
                function = self.raw.get_function(name)
            except Exception as exc:  # noqa: BLE001 - CuPy raises a bare CUDADriverError
                known = sorted(self.signatures) or ["<none found>"]
                raise CompileError(
                    name,
                    [Diagnostic(None, "error", f"no kernel named {name!r} (extern \"C\" __global__): "
                                f"the source defines {known}")],
                    str(exc),
                ) from None
            self._kernels[name] = Kernel(name, function, self.signatures.get(name), device=_loaded_on())
        return self._kernels[name]

    def launch(self, name: str, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        """Launch kernel ``name`` on ``torch.cuda.current_stream()``."""
        self.kernel(name)(grid, block, *args, shared_mem=shared_mem)


def _loaded_on() -> int | None:
    """The device whose context ``get_function`` just loaded the module in (CuPy's current)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDevice())
    except Exception:  # noqa: BLE001 - no CuPy or no device: the launch takes CuPy's own path
        return None


_ARCH_RE = re.compile(r"^sm_\d+[a-z]?$")


def check_arch(arch: str, capability: tuple[int, int]) -> None:
    """``arch`` names a target this GPU runs (``sm_90a`` on compute capability 9.0)."""
    if not _ARCH_RE.match(arch):
        raise ValueError(f"arch {arch!r} is not an NVRTC target such as 'sm_90a'")
    digits = arch[3:].rstrip("abcdefghijklmnopqrstuvwxyz")
    if digits != f"{capability[0]}{capability[1]}":
        raise CompileError(arch, [Diagnostic(None, "error", f"this kernel is built for {arch} only (an arch-specific "
                                             f"target), and this GPU is sm_{capability[0]}{capability[1]}")], "")


def nvrtc_cubin(code: str, options: Sequence[str], arch: str, hint: str = "module") -> bytes:
    """One NVRTC compile of ``code`` to a cubin for ``arch`` (no cache); ``CompileError`` with
    NVRTC's diagnostics if it fails."""
    from cupy.cuda import nvrtc

    program = nvrtc.createProgram(code, f"{hint}.cu", [], [])
    try:
        try:
            # -ftz=true as CuPy adds to every RawModule compile: the same numerics either way
            nvrtc.compileProgram(program, [*options, "-ftz=true", f"-arch={arch}"])
        except nvrtc.NVRTCError:
            log = nvrtc.getProgramLog(program)
            raise CompileError(hint, parse_diagnostics(log), log) from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)


def _cubin_for_arch(code: str, options: tuple[str, ...], arch: str, hint: str) -> Path:
    """NVRTC straight to a cubin for ``arch`` (this GPU's ``sm_XY`` or an arch-specific target),
    cached on disk by source, options, target and NVRTC version."""
    from cupy.cuda import nvrtc

    version = nvrtc.getVersion()
    digest = hashlib.sha256(repr((code, options, arch, version)).encode()).hexdigest()[:32]
    folder = Path(os.environ["CUPY_CACHE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}_{arch}.cubin"
    if path.exists() and path.stat().st_size > 0:
        return path
    cubin = nvrtc_cubin(code, options, arch, hint)
    temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_bytes(cubin)
    os.replace(temporary, path)  # atomic: a concurrent reader sees the whole cubin or none
    return path


# What CuPy's RawModule adds to every NVRTC compile for the current GPU, so that a cubin built
# here is the one it would build.
RAWMODULE_OPTIONS: tuple[str, ...] = ("--device-as-default-execution-space",)


def _module_for_this_gpu(cupy: Any, code: str, options: tuple[str, ...], device: int, hint: str) -> Any:
    """NVRTC straight to a cubin for this GPU's ``sm_XY``, cached on disk, loaded by path.

    ``RawModule(code=...)`` took 109 ms for a cold compile of the doctor's kernel, this 13 ms, the
    cubin byte for byte the same (H200 host, 2026-12-03): CuPy's own NVRTC call took 69-77 ms with
    the options passed here, a direct call 10-15 ms; why, inside CuPy, is not known. Where NVRTC cannot
    target this GPU by name or the source needs something CuPy supplies (an include path), the
    compile goes through ``RawModule`` as before, whose error is the one reported."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    try:
        path = _cubin_for_arch(code, options + RAWMODULE_OPTIONS, f"sm_{major}{minor}", hint)
    except CompileError:
        raw = cupy.RawModule(code=code, options=options, backend="nvrtc")  # defines as text: module docstring
        raw.compile()
        return raw
    return cupy.RawModule(path=str(path))


def compile_module(
    source: str,
    *,
    defines: Mapping[str, Any] | None = None,
    options: Sequence[str] = DEFAULT_OPTIONS,
    arch: str | None = None,
) -> CudaModule:
    """Compile ``source`` for the current GPU; raises ``CompileError`` with diagnostics.

    ``arch``: an arch-specific target such as ``"sm_90a"`` (see the module docstring); the GPU
    must be that architecture. Inside ``dry.recording()`` nothing is compiled: the call is
    recorded (with the default options; compile_ahead builds those) and a ``DryModule`` returned."""
    stand_in = dry.record(source, defines, arch, tuple(options), remember=tuple(options) == DEFAULT_OPTIONS)
    if stand_in is not None:
        return stand_in  # type: ignore[return-value]
    cupy = _cupy()
    import torch

    all_options = tuple(options) + define_options(defines) + ((f"-arch={arch}",) if arch else ())
    device = torch.cuda.current_device()
    key = (source, all_options, device)
    with _lock:
        cached = _memo.get(key)
    if cached is not None:
        return cached
    hint = ", ".join(parse_kernels(source)) or "module"
    with cupy.cuda.Device(device):
        started = time.perf_counter()
        try:
            if arch:
                check_arch(arch, torch.cuda.get_device_capability(device))
                path = _cubin_for_arch(define_prelude(defines) + source, tuple(options), arch, hint)
                raw = cupy.RawModule(path=str(path))
            else:
                raw = _module_for_this_gpu(cupy, define_prelude(defines) + source, tuple(options), device, hint)
        except cupy.cuda.compiler.CompileException as exc:
            log = exc.get_message() if hasattr(exc, "get_message") else str(exc)
            raise CompileError(hint, parse_diagnostics(log), log) from None
        finally:
            COSTS["compile"] += time.perf_counter() - started
    module = CudaModule(raw, source, all_options)
    with _lock:
        _memo[key] = module
    return module


def compile_ahead(units: Sequence[tuple[str, Mapping[str, Any] | None]], jobs: int | None = None,
                  arch: str | None = None) -> int:
    """Compile ``(source, defines)`` units side by side into the in-process and disk caches;
    returns how many compiled. A candidate evaluated at several settings compiled one module
    per setting, one after another, each when its setting was built; CuPy runs NVRTC with the
    GIL released, so a thread per unit overlaps them on the host's cores. Errors are left for the
    candidate's own build to report."""
    if not units:
        return 0
    workers = max(1, min(len(units), jobs or min(8, (os.cpu_count() or 2) // 2)))

    def one(unit: tuple[str, Mapping[str, Any] | None]) -> bool:
        try:
            if arch:
                compile_module(unit[0], defines=unit[1], arch=arch)
            else:
                compile_module(unit[0], defines=unit[1])
            return True
        except Exception:  # noqa: BLE001 - the candidate's build reports it, with its context
            return False

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compile-ahead") as pool:
        return sum(pool.map(one, units))


def clear_memory_cache() -> None:
    """Forget in-process modules (the on-disk cache stays); used to time cold compiles."""
    with _lock:
        _memo.clear()


def nvcc_ptx(source: str, arch: str, options: Sequence[str] = DEFAULT_OPTIONS) -> str:
    """Compile to PTX with ``nvcc`` (no GPU needed): how CPU-only CI checks CUDA sources."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise FileNotFoundError("nvcc is not on PATH; install the CUDA toolkit to check CUDA sources")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.cu"
        src.write_text(source)
        out = Path(tmp) / "kernel.ptx"
        proc = subprocess.run(
            [nvcc, "--ptx", f"-arch={arch}", *options, str(src), "-o", str(out)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            log = proc.stderr + proc.stdout
            raise CompileError(", ".join(parse_kernels(source)) or "module", parse_diagnostics(log), log)
        return out.read_text()
