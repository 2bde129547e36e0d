"""Launch a compiled kernel on PyTorch's current stream with tensors passed zero-copy.

Tensors go in as their device pointers (no copy, no CuPy array wrapper); Python numbers are
cast to the width the kernel's signature declares. The launch goes on
``torch.cuda.current_stream()`` so it orders correctly with the PyTorch work around it and
is captured by CUDA graphs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autotuner.errors import LaunchError
from autotuner.runtime import usage
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

    def __init__(self, name: str, function: Any, signature: KernelSignature | None) -> None:
        self.name = name
        self.function = function
        self.signature = signature
        self._noted_epoch = -1  # the first launch per report is noted for the resource report (runtime.usage)

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
        """Note the first launch of this report (``runtime.usage``): one int compare after that."""
        if self._noted_epoch != usage.EPOCH:
            usage.note_launch(self.name, self.function, _dim3(block, "block"), shared_mem)
            self._noted_epoch = usage.EPOCH

    def __call__(self, grid: Any, block: Any, *args: Any, shared_mem: int = 0) -> None:
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
