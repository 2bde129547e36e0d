"""CUDA C for values: storage types, loads and stores, literals, and node expressions.

``Env`` maps nodes to the C code of their value in the current scope (a register, a loaded
leaf, a kernel argument); ``compute`` emits one statement per node, rounding each half-precision
result once, as eager PyTorch does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from evolution.proposers.rules import ops
from evolution.proposers.rules.ir import Node, Scalar, Unsupported

# dtype -> (C storage type, load/store helper suffix, bytes)
STORAGE = {
    "float32": ("float", "f32", 4),
    "bfloat16": ("unsigned short", "bf16", 2),
    "float16": ("unsigned short", "f16", 2),
    "int64": ("long long", "i64", 8),
    "int32": ("int", "i32", 4),
    "bool": ("bool", "b8", 1),
}
TORCH_DTYPE = {"float32": "torch.float32", "bfloat16": "torch.bfloat16", "float16": "torch.float16",
               "int64": "torch.int64", "int32": "torch.int32", "bool": "torch.bool"}
_PASS = {"view", "expand", "id", "alias", "detach", "clone", "lift_fresh_copy", "contiguous", "unrowview",
         "rowview", "gchan"}


def storage(dtype: str) -> tuple[str, str, int]:
    if dtype not in STORAGE:
        raise Unsupported(f"tensors of dtype {dtype}")
    return STORAGE[dtype]


def ctype(dtype: str) -> str:
    """The C type a value of ``dtype`` is computed in."""
    if dtype in ("float32", "bfloat16", "float16"):
        return "float"
    if dtype in ("int64", "int32"):
        return "long long"
    if dtype == "bool":
        return "bool"
    raise Unsupported(f"values of dtype {dtype}")


def widen(dtype: str, code: str) -> str:
    """A stored element (C expression ``code``) as its compute type."""
    suffix = storage(dtype)[1]
    return {"bf16": f"bf16_to_f32({code})", "f16": f"f16_to_f32({code})",
            "i32": f"(long long)({code})"}.get(suffix, code)


def narrow(dtype: str, code: str) -> str:
    """A computed value as the element stored for ``dtype``."""
    suffix = storage(dtype)[1]
    return {"bf16": f"f32_to_bf16({code})", "f16": f"f32_to_f16({code})",
            "i32": f"(int)({code})"}.get(suffix, code)


def vector_ok(dtype: str) -> bool:
    return storage(dtype)[1] in ("f32", "bf16", "f16")


def round_to(dtype: str, code: str) -> str:
    return {"bfloat16": f"round_bf16({code})", "float16": f"round_f16({code})"}.get(dtype, code)


def literal(value: Any, kind: str = "float") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "long long" and isinstance(value, int):
        return f"{value}LL"
    v = float(value)
    if math.isnan(v):
        return "RULES_NAN"
    if math.isinf(v):
        return "RULES_POS_INF" if v > 0 else "RULES_NEG_INF"
    text = repr(v)
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}f"


@dataclass
class Scalars:
    """Run-time scalar kernel arguments: C name -> Python expression giving the value."""

    params: dict[str, str] = field(default_factory=dict)
    prefix: str = "s"

    def add(self, python: str) -> str:
        for name, expr in self.params.items():
            if expr == python:
                return name
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = python
        return name

    def c_params(self) -> list[str]:
        return [f"float {name}" for name in self.params]


class Env:
    """C code of each node's value in the current scope."""

    def __init__(self, scalars: Scalars, prefix: str = "v") -> None:
        self.code: dict[int, str] = {}
        self.types: dict[int, str] = {}
        self.scalars = scalars
        self.prefix = prefix
        self.outer: set[int] = set()  # nodes bound outside this scope (row values: loop-invariant)

    def child(self, prefix: str) -> "Env":
        env = Env(self.scalars, prefix)
        env.code = dict(self.code)
        env.types = dict(self.types)
        env.outer = set(self.code)
        return env

    def bind(self, node: Node, code: str, kind: str | None = None) -> None:
        self.code[node.id] = code
        self.types[node.id] = kind or ctype(node.dtype)

    def has(self, node: Node) -> bool:
        return node.id in self.code

    def value(self, node: Node) -> str:
        if node.id not in self.code:
            raise KeyError(f"{node!r} has no value in this scope")
        return self.code[node.id]

    def scalar(self, value: Any, kind: str) -> str:
        if isinstance(value, Scalar):
            python = value.ref.python() if value.ref is not None else repr(float(value.value))
            name = self.scalars.add(f"float({python})")
            return name if kind == "float" else f"({kind})({name})"
        if value is None:
            raise Unsupported("a missing scalar argument")
        return literal(value, kind)

    def _invariant_divisor(self, node: Node) -> bool:
        """A true division whose divisor is bound outside this (per-element) scope."""
        other = node.args.get("other")
        return (node.op == "div" and node.args.get("rounding_mode") is None and isinstance(other, Node)
                and other.id in self.outer and self.types.get(other.id, ctype(other.dtype)) == "float")

    def operand_kind(self, node: Node) -> str:
        """Integer literals stay integers only where every tensor operand is an integer."""
        kinds = [self.types.get(o.id, ctype(o.dtype)) for o in node.operands()]
        return "long long" if kinds and all(k == "long long" for k in kinds) else "float"

    def compute(self, node: Node) -> str | None:
        """Statement defining ``node`` (or None when it is only an alias of its operand)."""
        if node.op in _PASS:
            self.bind(node, self.value(node.args["self"]), self.types.get(node.args["self"].id))
            return None
        kind = self.operand_kind(node)

        def x(name: str) -> str:
            value = node.args.get(name)
            if isinstance(value, Node):
                return self.value(value)
            return self.scalar(value, kind)

        out_kind = ctype(node.dtype)
        if node.op == "cast":
            src = node.args["self"]
            body = self.value(src)
            if out_kind != self.types.get(src.id, ctype(src.dtype)):
                body = f"({out_kind})({body})"
            body = round_to(node.dtype, body) if src.dtype not in (node.dtype,) else body
        elif self._invariant_divisor(node) and out_kind == "float":
            # x / (row value): one reciprocal per row, hoisted out of the element loop by the
            # compiler, and a multiply per element instead of an IEEE division (about ten
            # instructions); at most 1.5 ulp from the quotient.
            body = round_to(node.dtype, f"({x('self')} * (1.0f / {x('other')}))")
        else:
            body = ops.expr(node, x)
            if out_kind == "float":
                body = round_to(node.dtype, body)
        name = f"{self.prefix}{node.id}"
        self.bind(node, name, out_kind)
        return f"const {out_kind} {name} = {body};"


def compute_all(env: Env, nodes: list[Node], indent: str) -> list[str]:
    lines = []
    for node in nodes:
        if env.has(node):
            continue
        stmt = env.compute(node)
        if stmt:
            lines.append(indent + stmt)
    return lines


def cone(nodes: list[Node], roots: list[Node], members: set[int]) -> list[Node]:
    """The members ``roots`` depend on, in the order of ``nodes``."""
    need: set[int] = set()
    stack = [r for r in roots if r.id in members]
    by_id = {n.id: n for n in nodes}
    while stack:
        node = stack.pop()
        if node.id in need:
            continue
        need.add(node.id)
        stack.extend(o for o in node.operands() if o.id in members and o.id in by_id)
    return [n for n in nodes if n.id in need]
