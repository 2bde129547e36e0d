"""Compile CUDA C with NVRTC (CuPy RawModule) and launch on PyTorch's current stream.

A minimal copy of the autotuner's runtime, so that this package needs neither the autotuner
nor anything but torch and CuPy: ``compile_module(source, defines=...)`` and
``module.launch(name, grid, block, args)``, tensors passed zero-copy as device pointers,
Python numbers cast to the width the kernel's signature declares.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_OPTIONS = ("-std=c++17",)
_KERNEL_RE = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
                        r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)", re.S)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict", "struct"}
SCALARS: dict[str, Any] = {
    "int": np.int32, "int32_t": np.int32, "signed": np.int32, "unsigned": np.uint32, "unsigned int": np.uint32,
    "uint32_t": np.uint32, "long": np.int64, "long int": np.int64, "long long": np.int64, "long long int": np.int64,
    "int64_t": np.int64, "ptrdiff_t": np.int64, "unsigned long": np.uint64, "unsigned long long": np.uint64,
    "uint64_t": np.uint64, "size_t": np.uint64, "short": np.int16, "int16_t": np.int16, "unsigned short": np.uint16,
    "char": np.int8, "int8_t": np.int8, "unsigned char": np.uint8, "uint8_t": np.uint8, "bool": np.bool_,
    "float": np.float32, "double": np.float64,
}
_lock = threading.Lock()
_memo: dict[tuple[str, tuple[str, ...], int], "CudaModule"] = {}
_streams: dict[tuple[int, int], Any] = {}


def parse_kernels(source: str) -> dict[str, list[tuple[str, bool]]]:
    """kernel name -> [(C base type, is pointer)] for every extern "C" __global__ kernel."""
    kernels = {}
    for match in _KERNEL_RE.finditer(_COMMENT_RE.sub(" ", source)):
        params = []
        text = match.group(2).strip()
        for part in ([] if text in ("", "void") else text.split(",")):
            part = part.split("=")[0].strip()
            words = [w for w in re.split(r"[\s*&\[\]]+", part) if w and w not in _QUALIFIERS]
            params.append((" ".join(words[:-1] if len(words) > 1 else words), "*" in part or "[" in part))
        kernels[match.group(1)] = params
    return kernels


def _define_options(defines: Mapping[str, Any] | None) -> tuple[str, ...]:
    out = []
    for name, value in sorted((defines or {}).items()):
        value = int(value) if isinstance(value, bool) else value
        out.append(f"-D{name}={repr(value) if isinstance(value, float) else value}")
    return tuple(out)


class CudaModule:
    def __init__(self, raw: Any, source: str) -> None:
        self.raw = raw
        self.signatures = parse_kernels(source)
        self._functions: dict[str, Any] = {}

    def kernel(self, name: str) -> Any:
        if name not in self._functions:
            self._functions[name] = self.raw.get_function(name)
        return self._functions[name]

    def launch(self, name: str, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        """Launch kernel ``name`` on ``torch.cuda.current_stream()`` (so CUDA graphs capture it)."""
        import cupy
        import torch

        params = self.signatures.get(name)
        if params is not None and len(params) != len(args):
            raise TypeError(f"kernel {name} takes {len(params)} arguments, got {len(args)}")
        converted = []
        for i, arg in enumerate(args):
            if isinstance(arg, torch.Tensor):
                converted.append(np.uint64(arg.data_ptr()))
            elif isinstance(arg, np.generic):
                converted.append(arg)
            else:
                ctype, pointer = params[i] if params is not None else ("", False)
                cast = np.uint64 if pointer else SCALARS.get(ctype)
                if cast is None:
                    raise TypeError(f"kernel {name} argument {i}: no C type known for {arg!r}")
                converted.append(cast(arg))
        device = torch.cuda.current_device()
        handle = int(torch.cuda.current_stream(device).cuda_stream)
        stream = _streams.get((device, handle))
        if stream is None:
            stream = _streams[(device, handle)] = cupy.cuda.ExternalStream(handle, device)
        grid = (grid,) if isinstance(grid, int) else tuple(int(g) for g in grid)
        block = (block,) if isinstance(block, int) else tuple(int(b) for b in block)
        with cupy.cuda.Device(device):
            self.kernel(name)(grid, block, tuple(converted), shared_mem=int(shared_mem), stream=stream)


def _module_for_arch(cupy: Any, source: str, options: tuple[str, ...], arch: str) -> Any:
    """An arch-specific target (``sm_90a``: wgmma): NVRTC straight to a cubin (RawModule adds
    the GPU's plain target itself), kept in the temp folder by content hash and loaded as a
    RawModule, so kernels are RawKernels either way."""
    import hashlib
    import os
    import tempfile

    from cupy.cuda import nvrtc

    digest = hashlib.sha256(repr((source, options, arch, nvrtc.getVersion())).encode()).hexdigest()[:32]
    path = os.path.join(tempfile.gettempdir(), f"kernel_package_{digest}_{arch}.cubin")
    if not os.path.exists(path):
        program = nvrtc.createProgram(source, "kernel.cu", [], [])
        try:
            try:
                nvrtc.compileProgram(program, [*options, "-ftz=true", f"-arch={arch}"])  # as CuPy's RawModule
            except nvrtc.NVRTCError:
                raise RuntimeError(f"NVRTC ({arch}):\n{nvrtc.getProgramLog(program)}") from None
            cubin = nvrtc.getCUBIN(program)
        finally:
            nvrtc.destroyProgram(program)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            f.write(cubin)
        os.replace(temporary, path)
    return cupy.RawModule(path=path)


def compile_module(source: str, *, defines: Mapping[str, Any] | None = None,
                   options: Sequence[str] = DEFAULT_OPTIONS, arch: str | None = None) -> CudaModule:
    """Compile ``source`` for the current GPU (cached in memory, and on disk by CuPy); ``arch``:
    an arch-specific target such as ``"sm_90a"``, which the GPU must be."""
    import cupy
    import torch

    all_options = tuple(options) + _define_options(defines)
    device = torch.cuda.current_device()
    key = (source, all_options + ((arch,) if arch else ()), device)
    with _lock:
        cached = _memo.get(key)
    if cached is not None:
        return cached
    with cupy.cuda.Device(device):
        if arch:
            raw = _module_for_arch(cupy, source, all_options, arch)
        else:
            raw = cupy.RawModule(code=source, options=all_options, backend="nvrtc")
            raw.compile()
    module = CudaModule(raw, source)
    with _lock:
        _memo[key] = module
    return module
