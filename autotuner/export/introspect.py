"""What an op's schema is, read off its task: inputs, weights, constructor arguments, outputs.

The op takes the reference's forward inputs, then its weights (state_dict entries, so the
caller owns them), then the constructor's scalar arguments; it returns what the reference
returns. Everything is read by running the reference on the meta device at the task's
smallest shape: no memory, no GPU.
"""

from __future__ import annotations

import inspect
import keyword
from dataclasses import dataclass, field
from typing import Any

import torch

from autotuner.errors import ExportError
from autotuner.tasks import Shape, Task

_SCALARS = {bool: "bool", int: "int", float: "float"}


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str  # "tensor" | "int" | "float" | "bool"
    rank: int | None = None  # tensors: number of dims
    default: Any = None
    has_default: bool = False

    def annotation(self) -> str:
        return "torch.Tensor" if self.kind == "tensor" else self.kind


@dataclass(frozen=True)
class OpSchema:
    op: str
    inputs: list[Arg]
    weights: list[str]
    init_args: list[Arg]
    outputs: int  # 0: a single tensor; n >= 1: a tuple of n tensors
    test_shape: dict[str, Any] = field(default_factory=dict)

    def python_args(self) -> str:
        """The op's Python signature: required arguments first, then those with defaults."""
        required = [f"{a.name}: {a.annotation()}" for a in self.inputs]
        required += [f"{w.replace('.', '_')}: torch.Tensor" for w in self.weights]
        required += [f"{a.name}: {a.annotation()}" for a in self.init_args if not a.has_default]
        optional = [f"{a.name}: {a.annotation()} = {a.default!r}" for a in self.init_args if a.has_default]
        return ", ".join(required + optional)

    def returns(self) -> str:
        return "torch.Tensor" if self.outputs == 0 else f"tuple[{', '.join(['torch.Tensor'] * self.outputs)}]"

    def init_order(self) -> list[str]:
        return [a.name for a in self.init_args]


def op_name(task_name: str) -> str:
    name = "".join(c if c.isalnum() else "_" for c in task_name).lower()
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"op_{name}"
    return name


def _kind(value: Any, what: str) -> str:
    if isinstance(value, torch.Tensor):
        return "tensor"
    for cls, name in _SCALARS.items():
        if type(value) is cls:
            return name
    raise ExportError(f"{what} is a {type(value).__name__}; an exported op takes tensors, ints, floats and bools")


def _smallest(task: Task) -> Shape:
    from autotuner.evaluator.inputs import make_inputs

    def size(shape: Shape) -> int:
        return sum(t.numel() for t in make_inputs(task, shape, 0, device="meta") if isinstance(t, torch.Tensor))

    return min(task.shapes, key=size)


def introspect(task: Task) -> OpSchema:
    """The op schema of ``task`` (raises ExportError for what an op cannot express)."""
    from autotuner.evaluator.inputs import init_args, make_inputs, make_reference

    shape = _smallest(task)
    inputs = make_inputs(task, shape, 0, device="meta")
    model = make_reference(task, shape, 0, device="meta")
    forward = [p for p in inspect.signature(model.forward).parameters.values()]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in forward) or len(forward) != len(inputs):
        raise ExportError(f"{task.name}: forward must take exactly the {len(inputs)} inputs get_inputs() returns, by name")
    in_args = [Arg(p.name, _kind(v, f"{task.name} input {p.name}"), v.dim() if isinstance(v, torch.Tensor) else None)
               for p, v in zip(forward, inputs)]
    non_persistent = set(dict(model.named_buffers())) - set(model.state_dict())
    if non_persistent:
        raise ExportError(f"{task.name}: non-persistent buffers {sorted(non_persistent)} cannot be op arguments")
    weights = list(model.state_dict())
    values = init_args(task, shape)
    params = [p for p in inspect.signature(type(model).__init__).parameters.values()][1:]
    init = []
    for i, p in enumerate(params):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ExportError(f"{task.name}: Model.__init__ takes *args / **kwargs; an op needs named arguments")
        has_default = p.default is not inspect.Parameter.empty
        value = values[i] if i < len(values) else p.default
        if not has_default and i >= len(values):
            raise ExportError(f"{task.name}: get_init_inputs() gives no value for {p.name}")
        init.append(Arg(p.name, _kind(value, f"{task.name} constructor argument {p.name}"),
                        default=p.default if has_default else None, has_default=has_default))
    with torch.no_grad():
        out = model(*inputs)
    if isinstance(out, torch.Tensor):
        n_out = 0
    elif isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
        n_out = len(out)
    else:
        raise ExportError(f"{task.name}: the reference returns {type(out).__name__}; an op returns tensors")
    names = [a.name for a in in_args] + [w.replace(".", "_") for w in weights] + [a.name for a in init]
    if len(set(names)) != len(names):
        raise ExportError(f"{task.name}: argument names repeat across inputs, weights and constructor: {names}")
    return OpSchema(op_name(task.name), in_args, weights, init, n_out, dict(shape.overrides))
