"""Guard bytes around every buffer a candidate receives or makes, checked after each forward.

PyTorch's caching allocator rounds every block up (to 512 bytes, and carves blocks out of
2 MiB segments), so a kernel that writes one element past its output lands in slack that no
one checks, or in a neighbour's tensor. Here every buffer the candidate can touch lives in the
middle of a larger allocation::

    [ guard: G bytes of 0xFF ][ the tensor's bytes ][ guard: G bytes of 0xFF ]

* inputs and the module's parameters and buffers: copied into guarded storage before the run;
* every tensor the candidate allocates during its forward (``empty``, ``zeros``, ``full``...,
  from Python or C++): the op watch (a dispatch mode) hands back a view into guarded storage
  instead of the allocator's block.

0xFF bytes are NaN in fp32, fp16 and bf16 (and -1 in integers), so a read past the end that
reaches the output makes it NaN (NaN never passes), and any write there changes a guard.
After each forward the guards are compared with 0xFF on the device (one reduction per
buffer). What guards cannot see (a read whose value is dropped, or an access far away) is
left to compute-sanitizer's memcheck, which every winner passes (``sanitize.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import time

import torch

CANARY = 0xFF
SPENT_S = [0.0]  # seconds spent placing and checking guards in this process (the overhead figure)


@dataclass
class _Guarded:
    storage: torch.Tensor  # uint8 [guard + nbytes + guard]
    nbytes: int
    what: str


@dataclass
class GuardSet:
    """Guarded buffers of one forward; ``check()`` names the first one whose guards changed."""

    guard_bytes: int
    buffers: list[_Guarded] = field(default_factory=list)
    devices: tuple[str, ...] = ("cuda",)  # device types guarded ("cpu" too in CPU tests)

    def applies(self, tensor: torch.Tensor) -> bool:
        return self.guard_bytes > 0 and tensor.device.type in self.devices

    def guarded_like(self, tensor: torch.Tensor, what: str, copy: bool = True) -> torch.Tensor:
        """A tensor equal to ``tensor`` (shape, strides, dtype) living between two guards."""
        if not self.applies(tensor):
            return tensor
        nbytes = _span_bytes(tensor)
        if nbytes == 0:
            return tensor
        started = time.perf_counter()
        g = self.guard_bytes
        storage = torch.empty(g + nbytes + g, dtype=torch.uint8, device=tensor.device)
        storage[:g].fill_(CANARY)
        storage[g + nbytes:].fill_(CANARY)
        inner = storage[g:g + nbytes].view(tensor.dtype) if tensor.element_size() > 0 else storage[g:g + nbytes]
        view = inner.as_strided(tensor.shape, tensor.stride(), inner.storage_offset())  # offset is absolute
        if copy:
            view.copy_(tensor)
        self.buffers.append(_Guarded(storage, nbytes, what))
        SPENT_S[0] += time.perf_counter() - started
        return view

    def check(self) -> str | None:
        """A reason when any guard changed, else None (synchronizes with the device)."""
        if not self.buffers:
            return None
        started = time.perf_counter()
        try:
            return self._check()
        finally:
            SPENT_S[0] += time.perf_counter() - started

    def _check(self) -> str | None:
        g = self.guard_bytes
        for buf in self.buffers:
            before, after = buf.storage[:g], buf.storage[g + buf.nbytes:]
            bad_before = int((before != CANARY).sum())
            bad_after = int((after != CANARY).sum())
            if bad_before or bad_after:
                where = []
                if bad_after:
                    first = int((after != CANARY).nonzero()[0])
                    where.append(f"{bad_after} byte(s) after its end (the first {first} bytes past it)")
                if bad_before:
                    last = g - 1 - int((before != CANARY).nonzero()[-1])
                    where.append(f"{bad_before} byte(s) before its start ({last} bytes before it)")
                return (f"out-of-bounds write: {buf.what} ({buf.nbytes} bytes) had {' and '.join(where)} "
                        "overwritten; the guard bytes around every buffer must stay untouched (in a real "
                        "model that memory belongs to another tensor)")
        return None

    def clear(self) -> None:
        self.buffers.clear()


def _span_bytes(tensor: torch.Tensor) -> int:
    """Bytes from the tensor's first to one past its last element (its strided extent)."""
    if tensor.numel() == 0:
        return 0
    extent = 1 + sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()) if size > 0)
    return extent * tensor.element_size()


def guard_inputs(guards: GuardSet, inputs: list[Any]) -> list[Any]:
    """The candidate's inputs, each copied between guards."""
    return [guards.guarded_like(v, f"input {i}") if isinstance(v, torch.Tensor) else v for i, v in enumerate(inputs)]


def guard_module(guards: GuardSet, module: torch.nn.Module) -> None:
    """Move the candidate's parameters and buffers into guarded storage (same values)."""
    with torch.no_grad():
        for name, param in list(module.named_parameters()):
            param.data = guards.guarded_like(param.data, f"parameter {name}")
        for name, buf in list(module.named_buffers()):
            if buf is not None and guards.applies(buf):
                module_path, _, leaf = name.rpartition(".")
                owner = module.get_submodule(module_path) if module_path else module
                owner._buffers[leaf] = guards.guarded_like(buf, f"buffer {name}")


_POISON_SMEM = r'''
extern "C" __global__ void autotuner_poison_smem(int words) {
    extern __shared__ unsigned int smem[];
    for (int k = threadIdx.x; k < words; k += blockDim.x) smem[k] = 0xFFFFFFFFu;
}
'''
_smem_kernels: dict[int, Any] = {}


def poison_shared_memory() -> str | None:
    """Fill every SM's shared memory with 0xFF (NaN) on the current stream, before a forward.

    Shared memory keeps what the last kernel left; a kernel that reads a slot it never wrote
    then sees that leftover (often zeros, so the answer looks right). After this it sees NaN,
    and NaN never passes. Returns why it could not run, or None (harness code: never raises).
    """
    try:
        import cupy
        import numpy as np

        device = torch.cuda.current_device()
        entry = _smem_kernels.get(device)
        if entry is None:
            props = torch.cuda.get_device_properties(device)
            smem = int(getattr(props, "shared_memory_per_block_optin", 0) or 48 * 1024)
            with cupy.cuda.Device(device):
                kernel = cupy.RawKernel(_POISON_SMEM, "autotuner_poison_smem")
                kernel.max_dynamic_shared_size_bytes = smem
            entry = _smem_kernels[device] = (kernel, smem, 2 * props.multi_processor_count)
        kernel, smem, blocks = entry
        stream = cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream, device)
        with cupy.cuda.Device(device):
            kernel((blocks,), (1024,), (np.int32(smem // 4),), shared_mem=smem, stream=stream)
        return None
    except Exception as exc:  # noqa: BLE001 - a missing poison weakens one check; it must not fail the harness
        _smem_kernels[-1] = exc
        return f"shared memory not poisoned: {type(exc).__name__}: {exc}"
