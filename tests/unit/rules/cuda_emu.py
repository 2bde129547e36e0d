"""Run the rules' generated candidates on the CPU, to check their numerics without a GPU.

``EmuModule`` stands in for ``autotuner.runtime.compile_module``: the candidate's CUDA source
is compiled as C++ with ``emu_shim.h`` (every CUDA thread of a block becomes a host thread;
``__syncthreads`` and warp shuffles become barriers) and launched through ctypes on CPU
tensors. ``run_candidate`` then checks the candidate like the evaluator does (fresh inputs,
poisoned outputs, the policy's op watch, fixed tolerances), but against the CPU reference and
on shapes small enough for the emulator. It runs in a child process (``emu_run.py``) so that
a crash or a hang in an emulated kernel cannot take the test session with it.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("RULES_EMU_CACHE", Path(tempfile.gettempdir()) / "rules-emu-cache"))
_CFLAGS = ["-std=c++20", "-O1", "-fPIC", "-pthread", "-Wno-unknown-pragmas", "-w"]
_CTYPES = {"float": ctypes.c_float, "double": ctypes.c_double, "int": ctypes.c_int, "long long": ctypes.c_longlong,
           "long": ctypes.c_long, "unsigned int": ctypes.c_uint, "bool": ctypes.c_bool,
           "unsigned long long": ctypes.c_ulonglong}
_POINTEE = {"float": {"float32"}, "unsigned short": {"bfloat16", "float16"}, "long long": {"int64"},
            "int": {"int32"}, "bool": {"bool"}, "double": {"float64"}}


def compiler_missing() -> str | None:
    return None if shutil.which("g++") else "g++ is not on PATH (the CPU emulator compiles kernels as C++)"


def _runtime_object() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    src = HERE / "emu_runtime.cpp"
    digest = hashlib.sha256(src.read_bytes() + (HERE / "emu_shim.h").read_bytes()).hexdigest()[:16]
    obj = CACHE / f"emu_runtime_{digest}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".{os.getpid()}.o")
        subprocess.run(["g++", *_CFLAGS, "-I", str(HERE), "-c", str(src), "-o", str(tmp)], check=True)
        tmp.replace(obj)
    return obj


def _wrapper(name: str, params: Any) -> str:
    decl, call = [], []
    for i, p in enumerate(params):
        if p.pointer:
            decl.append(f"void* a{i}")
            call.append(f"({p.ctype}*)a{i}")
        else:
            decl.append(f"{p.ctype} a{i}")
            call.append(f"a{i}")
    extra = "".join(", " + d for d in decl)
    return (f'extern "C" const char* emu_{name}(unsigned gx, unsigned gy, unsigned bx, unsigned cl, unsigned sm{extra}) {{\n'
            f"    std::function<void()> fn = [=]() {{ {name}({', '.join(call)}); }};\n"
            f"    return emu_run_cluster(gx, gy, bx, cl, sm, &fn);\n}}\n")


_CLUSTER_RE = re.compile(r"RULES_CLUSTER_ATTR\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)")


def cluster_sizes(source: str, defines: dict[str, Any] | None) -> dict[str, int]:
    """Kernels declared with ``RULES_CLUSTER_ATTR`` (``__cluster_dims__(CLUSTER, 1, 1)`` on
    sm_90): their cluster size, from the defines or the source's own ``#define CLUSTER``."""
    value = (defines or {}).get("CLUSTER")
    if value is None:
        m = re.search(r"#define\s+CLUSTER\s+(\d+)", source)
        value = int(m.group(1)) if m else 1
    return {name: int(value) for name in _CLUSTER_RE.findall(source)}


LAUNCHED: set[str] = set()  # every kernel name launched in this process (emu_run reports them)


class _Function:
    """What a candidate may set on a kernel (``kernel(name).function``): recorded, unused."""

    max_dynamic_shared_size_bytes = 48 * 1024


class _Kernel:
    def __init__(self) -> None:
        self.function = _Function()


class EmuModule:
    """The emulated counterpart of ``autotuner.runtime.CudaModule``."""

    def __init__(self, source: str, defines: dict[str, Any] | None = None) -> None:
        from autotuner.runtime.compile import define_options
        from autotuner.runtime.signature import parse_kernels

        self.signatures = parse_kernels(source)
        options = list(define_options(defines))
        text = '#include "emu_shim.h"\n#include <functional>\n'
        text += ('extern "C" const char* emu_run_cluster(unsigned, unsigned, unsigned, unsigned, unsigned, '
                 'std::function<void()>*);\n')
        self.clusters = cluster_sizes(source, defines)
        self.kernels: dict[str, _Kernel] = {}
        text += source + "\n" + "".join(_wrapper(n, s.params) for n, s in self.signatures.items())
        key = hashlib.sha256((text + "\0".join(options)).encode()).hexdigest()[:24]
        lib = CACHE / f"mod_{key}.so"
        if not lib.exists():
            runtime = _runtime_object()
            with tempfile.TemporaryDirectory() as tmp:
                cpp = Path(tmp) / "module.cpp"
                cpp.write_text(text)
                out = Path(tmp) / "module.so"
                proc = subprocess.run(["g++", *_CFLAGS, "-shared", "-I", str(HERE), *options, str(cpp),
                                       str(runtime), "-o", str(out)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"emulated compile failed:\n{proc.stderr[-4000:]}")
                staged = lib.with_suffix(f".{os.getpid()}.so")
                shutil.copy(out, staged)
                staged.replace(lib)
        self.lib = ctypes.CDLL(str(lib))

    def kernel(self, name: str) -> _Kernel:
        if name not in self.signatures:
            raise RuntimeError(f"no kernel named {name!r}")
        return self.kernels.setdefault(name, _Kernel())

    def launch(self, name: str, grid: Any, block: Any, args: Any, shared_mem: int = 0) -> None:
        import torch

        sig = self.signatures[name]
        if len(sig.params) != len(args):
            raise RuntimeError(f"{name} takes {len(sig.params)} arguments, got {len(args)}")
        grid = (grid,) if isinstance(grid, int) else tuple(grid)
        block = (block,) if isinstance(block, int) else tuple(block)
        cargs = []
        for p, a in zip(sig.params, args):
            if isinstance(a, torch.Tensor):
                if not p.pointer:
                    raise RuntimeError(f"{name}: tensor for scalar parameter {p.name}")
                allowed = _POINTEE.get(p.ctype)
                if allowed is not None and str(a.dtype).removeprefix("torch.") not in allowed:
                    raise RuntimeError(f"{name}: {p.ctype}* parameter {p.name} given a {a.dtype} tensor")
                cargs.append(ctypes.c_void_p(a.data_ptr()))
            else:
                if p.pointer:
                    raise RuntimeError(f"{name}: {type(a).__name__} for pointer parameter {p.name}")
                cargs.append(_CTYPES[p.ctype](a))
        LAUNCHED.add(name)
        fn = getattr(self.lib, f"emu_{name}")
        fn.restype = ctypes.c_char_p
        gx, gy = int(grid[0]), int(grid[1]) if len(grid) > 1 else 1
        if gx < 1 or gy < 1:
            raise RuntimeError(f"{name}: grid {grid}")
        limit = self.kernel(name).function.max_dynamic_shared_size_bytes
        if shared_mem > limit:
            raise RuntimeError(f"{name}: {shared_mem} bytes of dynamic shared memory over the kernel's limit {limit}")
        err = fn(ctypes.c_uint(gx), ctypes.c_uint(gy), ctypes.c_uint(int(block[0])),
                 ctypes.c_uint(self.clusters.get(name, 1)), ctypes.c_uint(int(shared_mem)), *cargs)
        if err:
            raise RuntimeError(f"{name}: {err.decode()}")


def compile_module(source: str, *, defines: dict[str, Any] | None = None, options: Any = None,
                   arch: str | None = None) -> EmuModule:
    return EmuModule(source, defines)


def _child(jobs: list[list[Any]], timeout_s: float) -> dict[int, dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(jobs, f)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, str(HERE / "emu_run.py"), f.name], capture_output=True, text=True,
                              timeout=timeout_s, env=env)
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, code = exc.stdout or "", f"timed out after {timeout_s:g} s", None
        out = out.decode() if isinstance(out, bytes) else out
    finally:
        os.unlink(f.name)
    done = {}
    for line in out.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            done[report.pop("job")] = report
    if len(done) < len(jobs):
        reason = f"emulator child exited {code}: {err[-1500:]}"
        for i in range(len(jobs)):
            done.setdefault(i, {"ok": False, "reason": reason, "shapes": [], "crashed": True})
    return done


def run_candidates(jobs: list[tuple[Path, Path, dict[str, Any], int]], workers: int = 2,
                   timeout_s: float = 900) -> list[dict[str, Any]]:
    """Check each ``(task, candidate, params, max_elems)`` on the CPU, ``workers`` children at
    a time; a job whose child crashed is run again alone, so one crash names one candidate."""
    from concurrent.futures import ThreadPoolExecutor

    flat = [[str(t), str(c), p, int(m)] for t, c, p, m in jobs]
    batches = [list(range(i, len(flat), workers)) for i in range(min(workers, len(flat)))]
    results: dict[int, dict[str, Any]] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for batch, done in zip(batches, pool.map(lambda b: _child([flat[i] for i in b], timeout_s), batches)):
            for k, i in enumerate(batch):
                results[i] = done[k]
        retry = [i for i, r in results.items() if r.get("crashed")]
        for i, done in zip(retry, pool.map(lambda i: _child([flat[i]], timeout_s), retry)):
            results[i] = done[0]
    return [results[i] for i in range(len(flat))]
