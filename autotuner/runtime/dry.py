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

While recording, every launch through this runtime does nothing (``Kernel.__call__`` and
``pdl.launch_ex`` check ``active()``), also of modules compiled for real before the recording
began (at the candidate's import): a dry run runs on inputs nothing checks, so none of its
kernels may touch memory. The evaluator runs the dry passes on a fresh import of the candidate,
so no stand-in reaches the module it verifies; one that outlives its recording anyway turns
into the real module at its first use afterwards (compiled, a cache hit once compiled ahead; the
attributes written to its kernels' functions replayed once; everything else forwarded).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Unit = tuple[str, dict[str, Any], "str | None"]  # (source, defines, arch) of one compile_module call
_state = threading.local()


def active() -> bool:
    """Whether this thread is recording."""
    return getattr(_state, "units", None) is not None


class DryFunction:
    """A kernel's driver function stand-in: attribute writes are kept (and replayed on the real
    function once there is one), other reads are 0."""

    def __init__(self) -> None:
        object.__setattr__(self, "written", {})

    def __setattr__(self, name: str, value: Any) -> None:
        self.written[name] = value

    def __getattr__(self, name: str) -> Any:
        written = object.__getattribute__(self, "written")
        return written.get(name, 0)


class _Resolving:
    """While recording, a stand-in; after it, the real object, resolved once and then used for
    every call and attribute (``__getattr__`` forwards what the stand-in lacks)."""

    _real: Any = None

    def real(self) -> Any:
        if self._real is None:
            self._real = self._resolve()
        return self._real

    def _resolve(self) -> Any:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or active():
            raise AttributeError(name)
        return getattr(self.real(), name)


class DryKernel(_Resolving):
    """A kernel that launches nothing while recording, and the real kernel after."""

    def __init__(self, name: str, module: "DryModule") -> None:
        self.name, self.module = name, module
        self.function = DryFunction()

    def _resolve(self) -> Any:
        kernel = self.module.real().kernel(self.name)
        for attr, value in self.function.written.items():  # once: later writes go to the real function
            setattr(kernel.function, attr, value)
        self.function = kernel.function
        return kernel

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if not active():
            self.real()(*args, **kwargs)


class DryModule(_Resolving):
    """What ``compile_module`` returns while recording: the kernels it would hold, launching
    nothing; outside a recording, the module it stands for."""

    def __init__(self, source: str, defines: Mapping[str, Any], arch: str | None, options: tuple[str, ...]) -> None:
        self.source, self.defines, self.arch, self.options = source, dict(defines), arch, options
        self._kernels: dict[str, DryKernel] = {}

    def _resolve(self) -> Any:
        from autotuner.runtime.compile import compile_module

        return compile_module(self.source, defines=self.defines, options=self.options, arch=self.arch)

    def kernel(self, name: str) -> Any:
        if not active():
            return self._kernels[name].real() if name in self._kernels else self.real().kernel(name)
        return self._kernels.setdefault(name, DryKernel(name, self))

    def launch(self, name: str, grid: Any, block: Any, args: Any, shared_mem: int = 0) -> None:
        if not active():
            self.kernel(name)(grid, block, *args, shared_mem=shared_mem)


def is_dry(obj: Any) -> bool:
    return isinstance(obj, (DryModule, DryKernel))


def resolve(obj: Any) -> Any:
    """``obj`` itself, or the real module or kernel of a stand-in used outside its recording."""
    return obj.real() if is_dry(obj) and not active() else obj


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


def record(source: str, defines: Mapping[str, Any] | None, arch: str | None,
           options: tuple[str, ...], remember: bool = True) -> DryModule | None:
    """The stand-in module while this thread records (the call recorded where ``remember``), else None."""
    units = getattr(_state, "units", None)
    if units is None:
        return None
    unit = (source, dict(defines or {}), arch)
    # only plain values: compile_ahead's threads format them (a candidate's own class could run
    # its __str__ there)
    plain = all(type(v) in (int, float, str, bool) for v in unit[1].values())
    if remember and plain and unit not in units:
        units.append(unit)
    return DryModule(source, unit[1], arch, tuple(options))
