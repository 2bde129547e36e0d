"""Compiles recorded instead of run: how the evaluator learns what a candidate that compiles as
it runs will compile, so that it can compile those modules side by side ahead of time.

A decode seed builds a module per batch size, load path and cluster shape at its first call
with them, one NVRTC compile after another inside its first verified forward (a second or more
each for the seeds' large sources; a decode seed's evaluation was mostly these). Inside
``recording()``, ``compile_module`` records ``(source, defines, arch)`` and returns a
``DryModule`` instead of compiling: its kernels accept attribute writes and launches and do
nothing, and the occupancy queries answer "unknown" as on an emulator. The evaluator runs each
setting's constructor and forward once this way on every shape, discards the outputs, and
compiles what was recorded on several threads (``compile_ahead``); the candidate's own calls then
find the modules in the in-process cache. Nothing a dry run computes is ever checked or kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Unit = tuple[str, dict[str, Any], "str | None"]  # (source, defines, arch) of one compile_module call
_state = threading.local()


class DryFunction:
    """A kernel's driver function stand-in: attribute writes are kept, other reads are 0."""

    def __getattr__(self, name: str) -> Any:
        return 0


class DryKernel:
    """A kernel that launches nothing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.function = DryFunction()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


class DryModule:
    """What ``compile_module`` returns while recording: the kernels it would hold, launching nothing."""

    def __init__(self, source: str, defines: Mapping[str, Any], arch: str | None) -> None:
        self.source, self.defines, self.arch = source, dict(defines), arch
        self._kernels: dict[str, DryKernel] = {}

    def kernel(self, name: str) -> DryKernel:
        return self._kernels.setdefault(name, DryKernel(name))

    def launch(self, *args: Any, **kwargs: Any) -> None:
        return None


def is_dry(obj: Any) -> bool:
    return isinstance(obj, (DryModule, DryKernel))


@contextmanager
def recording() -> Iterator[list[Unit]]:
    """Within: this thread's ``compile_module`` calls are recorded (each distinct one once, in
    call order) and return ``DryModule``s."""
    units: list[Unit] = []
    previous = getattr(_state, "units", None)
    _state.units = units
    try:
        yield units
    finally:
        _state.units = previous


def record(source: str, defines: Mapping[str, Any] | None, arch: str | None, remember: bool = True) -> DryModule | None:
    """The stand-in module while this thread records (the call recorded where ``remember``), else None."""
    units = getattr(_state, "units", None)
    if units is None:
        return None
    unit = (source, dict(defines or {}), arch)
    if remember and unit not in units:
        units.append(unit)
    return DryModule(source, unit[1], arch)
