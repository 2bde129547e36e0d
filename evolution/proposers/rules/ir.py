"""The rule-based proposer's op IR: a traced reference as a flat list of typed nodes.

A ``Node`` is one value of the reference's forward: a graph input, a parameter or buffer of
the model, a constant, or the result of an ATen op (``op`` is the op's packet name, e.g.
``"add"``, ``"_softmax"``; internal ops the planner introduces carry plain names such as
``"rowsum"``). Arguments are normalized against the op's schema into ``args`` (name -> value),
where a value is a ``Node``, a list of ``Node``, or a Python scalar / list / None.
``shape`` and ``dtype`` are the traced values at the task's default shape; runtime sizes are
always read from tensors, never from ``shape``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any


class Unsupported(Exception):
    """The planner cannot translate part of the graph; ``str`` says what and where."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message + (f" (line {line})" if line else ""))


@dataclass(frozen=True)
class AttrRef:
    """A scalar argument that is read from the model (``self.eps``) rather than a literal.

    ``path`` is the attribute's dotted path below the model (``"norm.eps"``); ``transform``
    a Python expression in ``v`` (``"v"``, ``"1.0 / v"``) giving the argument from the value.
    """

    path: str
    transform: str = "v"

    def python(self) -> str:
        head, _, attr = self.path.rpartition(".")
        if not head:
            obj = f"self.{attr}"
        elif all(part.isidentifier() for part in head.split(".")):
            obj = f"self.{head}.{attr}"
        else:
            obj = f"self.get_submodule({head!r}).{attr}"
        return self.transform.replace("v", f"({obj})") if self.transform != "v" else obj


@dataclass(frozen=True)
class SizeRef(AttrRef):
    """A scalar argument that is a forward input's size along one dim (``F.kl_div``'s
    ``batchmean`` divides by ``input.size(0)``): ``path`` is the input's name."""

    dim: int = 0

    def python(self) -> str:
        size = f"{self.path}.shape[{self.dim}]"
        return self.transform.replace("v", f"({size})") if self.transform != "v" else size


_local = threading.local()


def _next_id() -> int:
    counter = getattr(_local, "ids", None)
    if counter is None:
        counter = _local.ids = itertools.count()
    return next(counter)


def reset_ids() -> None:
    """Number nodes from 0 again (per thread): the same task always yields the same source,
    so resumed runs and the novelty filter recognise earlier proposals."""
    _local.ids = itertools.count()


@dataclass(eq=False)
class Node:
    op: str
    args: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    dtype: str = "float32"
    line: int | None = None
    name: str = ""  # inputs: forward argument name; params: state_dict name
    index: int = -1  # inputs: position in forward; getitem: tuple index
    attrs: dict[str, AttrRef] = field(default_factory=dict)  # arg name -> model attribute
    moving: set[str] = field(default_factory=set)  # float args that change with the shape
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # int arg -> (input index, dim) it equals
    id: int = field(default_factory=_next_id)

    @property
    def is_leaf(self) -> bool:
        return self.op in ("input", "param", "const")

    def operands(self) -> list["Node"]:
        out: list[Node] = []
        for value in self.args.values():
            if isinstance(value, Node):
                out.append(value)
            elif isinstance(value, (list, tuple)):
                out.extend(v for v in value if isinstance(v, Node))
        return out

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"%{self.id}={self.op}{list(self.shape)}:{self.dtype}"


@dataclass(frozen=True)
class Scalar:
    """A scalar argument known only at run time: a model attribute (``ref``), else ``value``."""

    value: float | int
    ref: AttrRef | None = None


@dataclass
class Graph:
    """A traced forward: nodes in topological order, the forward's inputs and outputs."""

    nodes: list[Node]
    inputs: list[Node]  # forward arguments, in order
    params: list[Node]  # parameters and buffers, by state_dict name
    outputs: list[Node]
    output_tuple: bool  # forward returns a tuple/list (else one tensor)
    arg_names: list[str]  # the forward's argument names
    model: Any = None  # the reference model on the meta device (module types, attributes)
    # model attributes an ``if`` in the forward reads (another value traces other ops)
    structural_attrs: list[str] = field(default_factory=list)

    def users(self) -> dict[int, list[Node]]:
        users: dict[int, list[Node]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for o in n.operands():
                users.setdefault(o.id, []).append(n)
        return users


SCALAR_DTYPES = {
    "float32": "float", "bfloat16": "float", "float16": "float", "float64": "double",
    "int64": "long long", "int32": "int", "bool": "bool",
}
FLOAT_DTYPES = ("float32", "bfloat16", "float16")


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")
