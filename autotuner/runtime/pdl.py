"""Programmatic dependent launch (PDL): a kernel may start while the one before it finishes.

A kernel launched with ``CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION`` may begin as
soon as every block of the previous kernel on the stream has executed
``griddepcontrol.launch_dependents`` (or exited); it must execute ``griddepcontrol.wait``
before it reads anything the previous kernel writes (the wait returns once that kernel has
completed and its memory is visible). What a kernel does before its wait (prefetching its
weights into L2, its prologue) then overlaps the previous kernel's tail and the launch
latency. Stream capture records the relation as a programmatic edge of the CUDA graph.

Only kernels written for it may be launched this way: ``pdl_launch`` is what a candidate calls
for a kernel that executes ``griddepcontrol.wait`` before its first dependent read. PDL is off
unless the caller turns it on (``with pdl_enabled(True):`` around the launches or a graph
capture); off, ``pdl_launch`` is an ordinary launch (and the wait a no-op), so the evaluator
and every other caller see the kernel run exactly as before.

The launch goes through the driver API (``cuLaunchKernelEx`` from ``libcuda.so.1`` via
ctypes; the ``CUfunction`` is CuPy's compiled function's handle), on PyTorch's current stream.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from autotuner.errors import LaunchError
from autotuner.runtime import dry

CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6

_state = threading.local()
_driver: dict[str, Any] = {}


class CUlaunchAttributeValue(ctypes.Union):
    # cuda.h: a 64-byte union whose largest members hold pointers (8-byte aligned)
    _fields_ = [("pad", ctypes.c_char * 64), ("programmaticStreamSerializationAllowed", ctypes.c_int),
                ("_align", ctypes.c_void_p)]


class CUlaunchAttribute(ctypes.Structure):
    # cuda.h: CUlaunchAttributeID id; char pad[8 - sizeof(id)]; CUlaunchAttributeValue value;
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4), ("value", CUlaunchAttributeValue)]


class CUlaunchConfig(ctypes.Structure):
    _fields_ = [
        ("gridDimX", ctypes.c_uint), ("gridDimY", ctypes.c_uint), ("gridDimZ", ctypes.c_uint),
        ("blockDimX", ctypes.c_uint), ("blockDimY", ctypes.c_uint), ("blockDimZ", ctypes.c_uint),
        ("sharedMemBytes", ctypes.c_uint), ("hStream", ctypes.c_void_p),
        ("attrs", ctypes.POINTER(CUlaunchAttribute)), ("numAttrs", ctypes.c_uint),
    ]


def is_enabled() -> bool:
    return bool(getattr(_state, "on", False))


@contextmanager
def pdl_enabled(on: bool = True) -> Iterator[None]:
    """Launch ``pdl_launch`` kernels with the PDL attribute inside the block (this thread only)."""
    before = is_enabled()
    _state.on = bool(on)
    try:
        yield
    finally:
        _state.on = before


def _cu_launch_kernel_ex() -> Any:
    fn = _driver.get("launch")
    if fn is None:
        lib = ctypes.CDLL("libcuda.so.1")
        fn = lib.cuLaunchKernelEx
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(CUlaunchConfig), ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                       ctypes.c_void_p]
        _driver["launch"] = fn
    return fn


def _dims(value: Any) -> tuple[int, int, int]:
    dims = [int(value)] if isinstance(value, (int, np.integer)) else [int(d) for d in value]
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise LaunchError(f"grid / block must be 1 to 3 positive ints, got {value!r}")
    return tuple(dims + [1] * (3 - len(dims)))  # type: ignore[return-value]


def kernel_params(converted: Sequence[Any]) -> tuple[Any, list[Any]]:
    """``void**`` for cuLaunchKernelEx: one pointer per argument to a copy of its value
    (numpy scalars of the kernel's parameter widths); the copies are returned to keep alive."""
    keep = [np.array(v, dtype=np.asarray(v).dtype) for v in converted]
    array = (ctypes.c_void_p * max(1, len(keep)))(*[k.ctypes.data for k in keep])
    return array, keep


def launch_config(grid: Any, block: Any, shared_mem: int, stream: int, pdl: bool) -> tuple[CUlaunchConfig, Any]:
    attrs = (CUlaunchAttribute * 1)()
    attrs[0].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
    attrs[0].value.programmaticStreamSerializationAllowed = 1
    gx, gy, gz = _dims(grid)
    bx, by, bz = _dims(block)
    config = CUlaunchConfig(gx, gy, gz, bx, by, bz, int(shared_mem), ctypes.c_void_p(stream),
                            ctypes.cast(attrs, ctypes.POINTER(CUlaunchAttribute)), 1 if pdl else 0)
    return config, attrs


def launch_ex(kernel: Any, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0, pdl: bool = True) -> None:
    """Launch ``kernel`` (an ``autotuner.runtime.Kernel``) on the current stream through
    cuLaunchKernelEx, with the PDL attribute when ``pdl``."""
    if dry.active():  # a dry run (runtime/dry.py): nothing launches
        return
    kernel = dry.resolve(kernel)
    import cupy
    import torch

    converted = kernel._convert(tuple(args))
    kernel.note_launch(block, shared_mem)
    device = torch.cuda.current_device()
    stream = int(torch.cuda.current_stream(device).cuda_stream)
    with cupy.cuda.Device(device):
        function = kernel.function
        function = getattr(function, "kernel", function)  # a CuPy RawKernel holds its cupy.cuda.Function
        handle = int(function.ptr)
        params, keep = kernel_params(converted)
        config, attrs = launch_config(grid, block, shared_mem, stream, pdl)
        err = _cu_launch_kernel_ex()(ctypes.byref(config), ctypes.c_void_p(handle), params, None)
    del keep, attrs
    if err != 0:
        raise LaunchError(f"cuLaunchKernelEx({kernel.name}) failed with CUresult {err}")


def pdl_launch(module: Any, name: str, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
    """Launch kernel ``name`` of ``module``: with the PDL attribute where ``pdl_enabled`` is on,
    else exactly as ``module.launch``. The kernel must execute ``griddepcontrol.wait`` before
    reading what earlier kernels wrote."""
    if dry.active():  # a dry run (runtime/dry.py): nothing launches
        return  # (a stand-in used after its recording launches its real kernel, attributes replayed)
    if not is_enabled() or not hasattr(module, "kernel"):
        module.launch(name, grid, block, args, shared_mem=shared_mem)
        return
    launch_ex(module.kernel(name), grid, block, args, shared_mem=shared_mem, pdl=True)
