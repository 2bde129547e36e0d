"""Which kernels ran through the runtime, with what the compiler gave them: the resource report.

The evaluator tells a model optimizing a kernel its registers per thread, local memory
(spills), shared memory and block size, as ``ptxas -v`` would tell a person. The driver
knows these for every loaded function (``cuFuncGetAttribute``, exposed by CuPy's
``RawKernel.attributes``), so nothing extra is compiled: ``Kernel`` notes its first launch
here (a flag check on later launches, nothing in the timed path), and the evaluator reads
the notes after the candidate's forward ran.

One registry per process; ``reset()`` starts a new report (the evaluator calls it before each
parameter setting).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# cuFuncGetAttribute names, as CuPy's RawKernel.attributes spells them -> our field names
_ATTRIBUTES = {
    "num_regs": "registers",
    "local_size_bytes": "local_bytes",
    "shared_size_bytes": "shared_static_bytes",
    "const_size_bytes": "const_bytes",
    "max_threads_per_block": "max_threads_per_block",
}


@dataclass
class _Launch:
    function: Any
    block_threads: int
    shared_dynamic_bytes: int


_lock = threading.Lock()
_launched: dict[str, _Launch] = {}
EPOCH = 0  # bumped by reset(); a Kernel notes its next launch when the epoch it saw is old


def note_launch(name: str, function: Any, block: tuple[int, ...], shared_mem: int) -> None:
    """Remember kernel ``name``'s first launch (the first one per name since ``reset``)."""
    threads = 1
    for dim in block:
        threads *= int(dim)
    with _lock:
        _launched.setdefault(name, _Launch(function, threads, int(shared_mem)))


WATCHERS: list[Callable[[str], None]] = []  # called with each launched kernel's name, in launch order


@contextmanager
def watch_launches(callback: Callable[[str], None]) -> Iterator[None]:
    """``callback(kernel name)`` at every launch through the runtime while inside: which kernels a
    piece of host code launched, in order (the decode profile's per-slot times), without relying
    on the profiler linking driver-API launches to the host ranges around them."""
    WATCHERS.append(callback)
    try:
        yield
    finally:
        WATCHERS.remove(callback)


def reset() -> None:
    """Forget every launch noted so far (a new report starts)."""
    global EPOCH
    with _lock:
        _launched.clear()
        EPOCH += 1


def function_attributes(function: Any) -> dict[str, int]:
    """The driver's attributes of a loaded function, under our names; {} where unreadable.

    CuPy's ``RawKernel`` has ``attributes`` (a dict); anything else without it reports nothing.
    """
    try:
        raw = dict(function.attributes)
    except Exception:  # noqa: BLE001 - no attributes, or CuPy's CUDADriverError: no report, never a failure
        return {}
    return {ours: int(raw[theirs]) for theirs, ours in _ATTRIBUTES.items() if theirs in raw}


def launched_kernels() -> list[dict[str, Any]]:
    """One plain dict per kernel launched since ``reset``, sorted by name (fields of
    ``autotuner.evaluator.verdict.KernelResources``)."""
    with _lock:
        launches = sorted(_launched.items())
    report = []
    for name, launch in launches:
        attributes = function_attributes(launch.function)
        if "registers" not in attributes:
            continue
        report.append({"name": name, **attributes, "shared_dynamic_bytes": launch.shared_dynamic_bytes,
                       "block_threads": launch.block_threads})
    return report
