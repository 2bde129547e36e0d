"""Task files: a PyTorch reference in the KernelBench format, plus optional metadata.

A task file defines ``class Model(nn.Module)``, ``get_inputs()`` and ``get_init_inputs()``;
KernelBench files load unchanged. Optional module-level metadata (all names upper case):

``SHAPES``      list of dicts, each overriding module globals that ``get_inputs`` /
                ``get_init_inputs`` read (e.g. ``{"batch_size": 8, "dim": 4096}``). A dict may
                carry ``"hidden": True``: the evaluator checks that shape but proposers never
                see it. The module's own values are always the ``default`` shape, the one timed.
``DTYPE``       ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``: floating inputs and
                parameters are cast to it.
``TOLERANCE``   dict overriding the dtype's tolerances (``rtol``, ``atol``, ``rel_l2``).
``POLICY``      ``"strict"`` (default: only allocation and view ops may run in PyTorch) or
                ``"hybrid"`` (GEMM and convolution may stay in cuBLAS / cuDNN).
``FAMILY``      a family name (``"activation"``, ``"reduction"``...); else the folder name.
``INPUT_DISTRIBUTIONS``  extra input distributions to verify with, default
                ``["signed", "wide"]``; ``[]`` where inputs must keep the task's own law.
``TIMING``      ``"events"`` (default: each call timed alone between events, the L2 flushed
                before it) or ``"graph"``: the calls are replayed from one CUDA graph, each on its
                own copy of the weights and inputs (together several times the L2), for
                decode-size ops whose kernel takes microseconds and whose launch from Python
                takes more; the candidate's forward must then be capturable, as in the engine.
``bytes_moved(inputs, outputs)`` / ``flops(inputs, outputs)``  optional functions for the
                roofline; else bytes are estimated from tensor sizes and FLOPs counted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from autotuner.errors import TaskLoadError

DTYPES = ("float32", "bfloat16", "float16")
POLICIES = ("strict", "hybrid")
TIMINGS = ("events", "graph")
DISTRIBUTIONS = ("signed", "wide")
_SHAPE_META_KEYS = {"hidden", "name"}
_counter = itertools.count()


@dataclass(frozen=True)
class Shape:
    """One setting of a task's size globals. ``overrides`` is empty for the default shape."""

    name: str
    overrides: dict[str, Any]
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "overrides": dict(self.overrides), "hidden": self.hidden}


@dataclass
class Task:
    """A loaded task file. ``module`` is the executed file; use ``shape()`` to resize it."""

    path: Path
    name: str
    source: str
    content_hash: str
    module: ModuleType
    shapes: list[Shape]
    dtype: str = "float32"
    policy: str = "strict"
    family: str = "misc"
    tolerance: dict[str, float] = field(default_factory=dict)
    distributions: list[str] = field(default_factory=lambda: list(DISTRIBUTIONS))
    timing: str = "events"

    @property
    def default_shape(self) -> Shape:
        return self.shapes[0]

    @property
    def visible_shapes(self) -> list[Shape]:
        """The shapes a proposer may be told about."""
        return [s for s in self.shapes if not s.hidden]

    @contextmanager
    def shape(self, shape: Shape) -> Iterator[ModuleType]:
        """Set the module's size globals to ``shape`` for the duration of the block."""
        saved = {k: getattr(self.module, k) for k in shape.overrides}
        try:
            for key, value in shape.overrides.items():
                setattr(self.module, key, value)
            yield self.module
        finally:
            for key, value in saved.items():
                setattr(self.module, key, value)

    def shape_by_name(self, name: str) -> Shape:
        for s in self.shapes:
            if s.name == name:
                return s
        raise KeyError(f"task {self.name} has no shape {name!r}; it has {[s.name for s in self.shapes]}")


def content_hash(source: str) -> str:
    """Hash of the task file's text: identifies a task across renames and machines."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _exec_module(path: Path, source: str) -> ModuleType:
    module_name = f"autotuner_task_{next(_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TaskLoadError(str(path), "not a Python file that can be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise TaskLoadError(str(path), f"syntax error at line {exc.lineno}: {exc.msg}") from None
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # trusted: task files are the user's own references
    except Exception as exc:  # noqa: BLE001 - reported with the file's own line
        line = _line_in(path, exc)
        raise TaskLoadError(str(path), f"raised {type(exc).__name__} at import{line}: {exc}") from exc
    return module


def _line_in(path: Path, exc: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename) == path:
            return f" (line {frame.lineno})"
    return ""


def _shapes(path: Path, module: ModuleType) -> list[Shape]:
    shapes = [Shape("default", {})]
    declared = getattr(module, "SHAPES", [])
    if not isinstance(declared, (list, tuple)):
        raise TaskLoadError(str(path), "SHAPES must be a list of dicts")
    for i, entry in enumerate(declared):
        if not isinstance(entry, dict):
            raise TaskLoadError(str(path), f"SHAPES[{i}] must be a dict, got {type(entry).__name__}")
        overrides = {k: v for k, v in entry.items() if k not in _SHAPE_META_KEYS}
        unknown = [k for k in overrides if not hasattr(module, k)]
        if unknown:
            raise TaskLoadError(
                str(path),
                f"SHAPES[{i}] sets {unknown}, which the file does not define as module globals",
            )
        name = str(entry.get("name") or f"shape{i + 1}")
        shapes.append(Shape(name, overrides, hidden=bool(entry.get("hidden", False))))
    names = [s.name for s in shapes]
    if len(set(names)) != len(names):
        raise TaskLoadError(str(path), f"shape names repeat: {names}")
    return shapes


def _choice(path: Path, module: ModuleType, attr: str, allowed: tuple[str, ...], default: str) -> str:
    value = getattr(module, attr, default)
    if value not in allowed:
        raise TaskLoadError(str(path), f"{attr} = {value!r}; expected one of {list(allowed)}")
    return str(value)


def load_task(path: str | Path, default_policy: str | None = None) -> Task:
    """Load and validate a task file; raises ``TaskLoadError`` naming the file and fault.

    ``default_policy`` is the policy of a file that declares no ``POLICY`` (KernelBench files
    load unchanged and are ``"strict"`` unless told otherwise); a file's own POLICY wins.
    """
    if default_policy not in (None, *POLICIES):
        raise TaskLoadError(str(path), f"policy {default_policy!r}; expected one of {list(POLICIES)}")
    path = Path(path).resolve()
    if not path.is_file():
        raise TaskLoadError(str(path), "no such file")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskLoadError(str(path), f"cannot be read: {exc}") from None
    module = _exec_module(path, source)

    import torch.nn as nn  # deferred: loading torch is slow and not needed for errors above

    model_cls = getattr(module, "Model", None)
    if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
        raise TaskLoadError(str(path), "defines no `class Model(nn.Module)`")
    for fn in ("get_inputs", "get_init_inputs"):
        if not callable(getattr(module, fn, None)):
            raise TaskLoadError(str(path), f"defines no function `{fn}()`")

    tolerance = getattr(module, "TOLERANCE", {})
    if not isinstance(tolerance, dict) or set(tolerance) - {"rtol", "atol", "rel_l2"}:
        raise TaskLoadError(str(path), "TOLERANCE must be a dict with keys among rtol, atol, rel_l2")
    distributions = list(getattr(module, "INPUT_DISTRIBUTIONS", DISTRIBUTIONS))
    bad = [d for d in distributions if d not in DISTRIBUTIONS]
    if bad:
        raise TaskLoadError(str(path), f"INPUT_DISTRIBUTIONS has {bad}; known: {list(DISTRIBUTIONS)}")

    return Task(
        path=path,
        name=path.stem,
        source=source,
        content_hash=content_hash(source),
        module=module,
        shapes=_shapes(path, module),
        dtype=_choice(path, module, "DTYPE", DTYPES, "float32"),
        policy=_choice(path, module, "POLICY", POLICIES, default_policy or "strict"),
        family=str(getattr(module, "FAMILY", path.parent.name)),
        tolerance={k: float(v) for k, v in tolerance.items()},
        distributions=distributions,
        timing=_choice(path, module, "TIMING", TIMINGS, "events"),
    )


def discover_tasks(root: str | Path) -> list[Path]:
    """Task files below ``root`` (a file is returned as itself), sorted for stable order."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise TaskLoadError(str(root), "no such file or folder")
    return sorted(p for p in root.rglob("*.py") if not p.name.startswith("_"))


def suite_dir() -> Path:
    """The built-in task suite: ``kernels/tasks`` in a checkout, package data when installed."""
    from autotuner.resources import kernels_path

    return kernels_path("tasks")
