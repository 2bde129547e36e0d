"""Launch a compiled kernel on PyTorch's current stream with tensors passed zero-copy.

Tensors go in as their device pointers (no copy, no CuPy array wrapper); Python numbers are
cast to the width the kernel's signature declares. The launch goes on
``torch.cuda.current_stream()`` so it orders correctly with the PyTorch work around it and
is captured by CUDA graphs.

The host's time per launch is part of every measured call (the timer's window opens before
the forward runs) and of every deployed step that is not graph-replayed, so the common case
goes straight to the driver: ``cuLaunchKernel`` through ctypes, on per-thread argument slots
built once from the signature, the raw stream from PyTorch. CuPy's launch (a device context
switch, its own argument packing: about 4x the host time) stays the path for everything
else: a kernel without a parsed signature, another device than the module's, a thread with no
current CUDA context.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np

from autotuner.errors import LaunchError
from autotuner.runtime import dry, usage
from autotuner.runtime.signature import KernelSignature

# Element types a pointer parameter may declare, and the torch dtype names they accept.
_POINTEE_DTYPES: dict[str, set[str]] = {
    "float": {"float32"}, "double": {"float64"},
    "half": {"float16"}, "__half": {"float16"},
    "__nv_bfloat16": {"bfloat16"}, "nv_bfloat16": {"bfloat16"},
    "int": {"int32"}, "int32_t": {"int32"}, "unsigned int": {"int32", "uint32"},
    "long": {"int64"}, "long long": {"int64"}, "int64_t": {"int64"},
    "unsigned long long": {"int64", "uint64"}, "uint64_t": {"int64", "uint64"},
    "bool": {"bool", "uint8"}, "unsigned char": {"uint8", "bool"}, "uint8_t": {"uint8", "bool"},
    "char": {"int8"}, "int8_t": {"int8"}, "short": {"int16"}, "int16_t": {"int16"},
}
_streams: dict[tuple[int, int], Any] = {}
_driver: dict[str, Any] = {}
CUDA_ERROR_INVALID_CONTEXT = 201
# AUTOTUNER_LAUNCH=cupy: every launch through CuPy (to tell the two paths apart)
DRIVER_LAUNCH = os.environ.get("AUTOTUNER_LAUNCH", "driver") != "cupy"

# numpy scalar type of a parameter -> (ctypes slot type, kind): "p" pointer, "i" integer
# (range-checked, as numpy's own conversion is), "f" floating point, "b" bool
_SLOTS: dict[type, tuple[Any, str]] = {
    np.uint64: (ctypes.c_uint64, "i"), np.int64: (ctypes.c_int64, "i"), np.int32: (ctypes.c_int32, "i"),
    np.uint32: (ctypes.c_uint32, "i"), np.int16: (ctypes.c_int16, "i"), np.uint16: (ctypes.c_uint16, "i"),
    np.int8: (ctypes.c_int8, "i"), np.uint8: (ctypes.c_uint8, "i"), np.bool_: (ctypes.c_bool, "b"),
    np.float32: (ctypes.c_float, "f"), np.float64: (ctypes.c_double, "f"),
}


def _cu_launch_kernel() -> Any:
    fn = _driver.get("launch")
    if fn is None:
        fn = ctypes.CDLL("libcuda.so.1").cuLaunchKernel
        fn.restype = ctypes.c_int
        u = ctypes.c_uint
        fn.argtypes = [ctypes.c_void_p, u, u, u, u, u, u, u, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        _driver["launch"] = fn
    return fn


class _Plan:
    """What the fast path needs per parameter, from the signature: the slot type, the kind,
    the accepted torch dtypes of a pointer (None: any), the range of an integer."""

    def __init__(self, signature: KernelSignature) -> None:
        import torch

        self.ctypes: list[Any] = []
        self.kinds: list[str] = []
        self.dtypes: list[frozenset | None] = []
        self.ranges: list[tuple[int, int] | None] = []
        for param in signature.params:
            numpy_type = param.numpy_type
            if numpy_type not in _SLOTS:
                raise KeyError(param.ctype)
            slot, kind = _SLOTS[numpy_type]
            allowed = _POINTEE_DTYPES.get(param.ctype) if param.pointer else None
            self.ctypes.append(slot)
            self.kinds.append("p" if param.pointer else kind)
            self.dtypes.append(frozenset(getattr(torch, d) for d in allowed) if allowed is not None else None)
            info = np.iinfo(numpy_type) if kind == "i" else None
            self.ranges.append((int(info.min), int(info.max)) if info is not None else None)


class _Slots:
    """One thread's argument storage for a kernel and the ``void**`` pointing at it."""

    def __init__(self, plan: _Plan) -> None:
        self.values = [slot() for slot in plan.ctypes]
        self.params = (ctypes.c_void_p * max(1, len(self.values)))(*[ctypes.addressof(v) for v in self.values])


def _dim3(value: Any, what: str) -> tuple[int, ...]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3 or any(int(d) < 1 for d in dims):
        raise LaunchError(f"{what} must be 1 to 3 positive ints, got {value!r}")
    return tuple(int(d) for d in dims)


def _external_stream(cupy: Any, torch: Any, device: int) -> Any:
    handle = int(torch.cuda.current_stream(device).cuda_stream)
    key = (device, handle)
    stream = _streams.get(key)
    if stream is None:
        stream = cupy.cuda.ExternalStream(handle, device)
        _streams[key] = stream
    return stream


class Kernel:
    """One kernel of a compiled module; call it as ``kernel(grid, block, *args)``."""

    def __init__(self, name: str, function: Any, signature: KernelSignature | None, device: int | None = None) -> None:
        self.name = name
        self.function = function
        self.signature = signature
        self._noted_epoch = -1  # the first launch per report is noted for the resource report (runtime.usage)
        self.device = device  # where the module is loaded: the fast path launches there only
        try:
            usable = DRIVER_LAUNCH and signature is not None and device is not None
            self._plan = _Plan(signature) if usable else None
        except KeyError:  # a parameter type the slots do not cover: CuPy's path
            self._plan = None
        self._local = threading.local()
        self._handle: int | None = None

    def _convert(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        import torch

        params = self.signature.params if self.signature else None
        if params is not None and len(params) != len(args):
            raise LaunchError(
                f"kernel {self.name} takes {len(params)} arguments "
                f"({', '.join(p.name or p.ctype for p in params)}), got {len(args)}"
            )
        converted = []
        for i, arg in enumerate(args):
            param = params[i] if params is not None else None
            where = f"kernel {self.name} argument {i}" + (f" ({param.name})" if param else "")
            if isinstance(arg, torch.Tensor):
                if not arg.is_cuda:
                    raise LaunchError(f"{where}: tensor is on {arg.device}, not on a CUDA device")
                if param is not None and not param.pointer:
                    raise LaunchError(f"{where}: got a tensor for a {param.ctype} parameter")
                if param is not None:
                    allowed = _POINTEE_DTYPES.get(param.ctype)
                    dtype = str(arg.dtype).removeprefix("torch.")
                    if allowed is not None and dtype not in allowed:
                        raise LaunchError(f"{where}: {param.ctype}* parameter given a {dtype} tensor")
                converted.append(np.uint64(arg.data_ptr()))
            elif isinstance(arg, np.generic):
                converted.append(arg)
            elif isinstance(arg, (bool, int, float)):
                numpy_type = param.numpy_type if param is not None else None
                if numpy_type is None:
                    raise LaunchError(
                        f"{where}: cannot tell the C type for {arg!r}; pass a numpy scalar "
                        "(np.int32, np.int64, np.float32...) or declare the kernel extern \"C\""
                    )
                if param is not None and param.pointer:
                    raise LaunchError(f"{where}: got {type(arg).__name__} for a pointer parameter")
                converted.append(numpy_type(arg))
            else:
                raise LaunchError(f"{where}: unsupported argument type {type(arg).__name__}")
        return tuple(converted)

    def note_launch(self, block: Any, shared_mem: int) -> None:
        """Note the first launch of this report (``runtime.usage``): one int compare after that;
        and tell ``usage.watch_launches``'s watchers, where there are any."""
        if usage.WATCHERS:
            for watcher in usage.WATCHERS:
                watcher(self.name)
        if self._noted_epoch != usage.EPOCH:
            usage.note_launch(self.name, self.function, _dim3(block, "block"), shared_mem)
            self._noted_epoch = usage.EPOCH

    def __call__(self, grid: Any, block: Any, *args: Any, shared_mem: int = 0) -> None:
        if dry.active():  # a dry run (runtime/dry.py): no kernel touches its unchecked inputs
            return
        if self._plan is not None and self._launch_fast(grid, block, args, shared_mem):
            return
        self._launch_cupy(grid, block, args, shared_mem)

    def _launch_fast(self, grid: Any, block: Any, args: tuple[Any, ...], shared_mem: int) -> bool:
        """The driver launch; False where CuPy's path must take the call (another device, no
        current context on this thread). Bad arguments raise what ``_convert`` raises."""
        import torch

        plan = self._plan
        device = _current_device()
        if device != self.device or len(args) != len(plan.kinds):
            return False
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = _Slots(plan)
        values = slots.values
        tensor = torch.Tensor
        for i, arg in enumerate(args):
            kind = plan.kinds[i]
            if kind == "p":
                allowed = plan.dtypes[i]
                if type(arg) is tensor or isinstance(arg, tensor):
                    if arg.is_cuda and (allowed is None or arg.dtype in allowed):
                        values[i].value = arg.data_ptr()
                        continue
            elif kind == "i":
                if type(arg) is int:
                    low, high = plan.ranges[i]
                    if low <= arg <= high:
                        values[i].value = arg
                        continue
            elif kind == "f":
                if type(arg) is float or type(arg) is int:
                    values[i].value = arg
                    continue
            elif type(arg) is bool:
                values[i].value = arg
                continue
            # anything else (numpy scalars, errors): the general conversion, which raises on bad input
            converted = self._convert(args)
            for j, v in enumerate(converted):
                values[j].value = v.item() if isinstance(v, np.generic) else v
            break
        gx, gy, gz = _dims3(grid, "grid")
        bx, by, bz = _dims3(block, "block")
        self.note_launch(block, shared_mem)
        handle = self._handle
        if handle is None:
            function = getattr(self.function, "kernel", self.function)  # a RawKernel holds its Function
            handle = self._handle = int(function.ptr)
        stream = _raw_stream(device)
        err = _cu_launch_kernel()(handle, gx, gy, gz, bx, by, bz, int(shared_mem), stream, slots.params, None)
        if err == CUDA_ERROR_INVALID_CONTEXT:  # a thread that never made the device current: CuPy does
            return False
        if err != 0:
            raise LaunchError(f"launching kernel {self.name} failed: CUresult {err} (grid {grid}, block {block}, "
                              f"{shared_mem} bytes of dynamic shared memory)")
        return True

    def _launch_cupy(self, grid: Any, block: Any, args: tuple[Any, ...], shared_mem: int) -> None:
        import cupy
        import torch

        converted = self._convert(args)
        self.note_launch(block, shared_mem)
        device = torch.cuda.current_device()
        stream = _external_stream(cupy, torch, device)
        with cupy.cuda.Device(device):
            self.function(
                _dim3(grid, "grid"), _dim3(block, "block"), converted,
                shared_mem=int(shared_mem), stream=stream,
            )


def _current_device() -> int:
    import torch

    get = getattr(torch._C, "_cuda_getDevice", None)  # torch.cuda.current_device() without its Python layers
    return int(get()) if get is not None else torch.cuda.current_device()


def _raw_stream(device: int) -> int:
    """PyTorch's current stream's handle, as Inductor's own launchers read it."""
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw(device) if raw is not None else int(torch.cuda.current_stream(device).cuda_stream)


def _dims3(value: Any, what: str) -> tuple[int, int, int]:
    """``_dim3`` padded to three, with the common 1-tuple and int cases first."""
    if type(value) is int:
        if value >= 1:
            return value, 1, 1
    elif type(value) is tuple and len(value) == 1 and type(value[0]) is int and value[0] >= 1:
        return value[0], 1, 1
    dims = _dim3(value, what)
    return (dims + (1, 1))[:3]  # type: ignore[return-value]
