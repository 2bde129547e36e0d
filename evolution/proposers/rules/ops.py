"""Pointwise ops the rules translate, as CUDA C expressions over fp32 (or integer) operands.

Every floating value is computed in fp32 ("opmath", as PyTorch's own kernels do) and, where
the reference's op returns bf16 / fp16, rounded once to that type (``cuda.round_to``), so a
chain of half-precision ops reproduces eager's rounding point by point.

``expr(node, x)`` returns the C expression of ``node`` given ``x(name)``, the C code of the
operand or scalar argument ``name``; ``None`` marks an op that is not pointwise here.
"""

from __future__ import annotations

from typing import Callable

from evolution.proposers.rules.ir import Node, Unsupported

Operand = Callable[[str], str]

# Ops whose result is one element computed from the same element of each operand.
_UNARY: dict[str, str] = {
    # NaN stays NaN (as torch.relu) without a branch: !(a <= 0) is true for NaN (one selp)
    "relu": "(!({a} <= 0.0f) ? {a} : 0.0f)",
    "sigmoid": "rules_rcp(1.0f + rules_exp(-{a}))",
    "silu": "({a} * rules_rcp(1.0f + rules_exp(-{a})))",
    "tanh": "tanhf({a})",
    "exp": "rules_exp({a})",
    "exp2": "exp2f({a})",
    "expm1": "expm1f({a})",
    "log": "logf({a})",
    "log2": "log2f({a})",
    "log10": "log10f({a})",
    "log1p": "log1pf({a})",
    "sqrt": "sqrtf({a})",
    "rsqrt": "rsqrtf({a})",
    "abs": "fabsf({a})",
    "neg": "(-{a})",
    "reciprocal": "(1.0f / {a})",
    "sin": "sinf({a})",
    "cos": "cosf({a})",
    "tan": "tanf({a})",
    "erf": "erff({a})",
    "erfc": "erfcf({a})",
    "floor": "floorf({a})",
    "ceil": "ceilf({a})",
    "trunc": "truncf({a})",
    "round": "rintf({a})",
    "sign": "(float)(({a} > 0.0f) - ({a} < 0.0f))",
    # x 1/6 rather than / 6: an IEEE division is a call with a slow path; 1 ulp apart
    "hardswish": "({a} * fminf(fmaxf({a} + 3.0f, 0.0f), 6.0f) * 0.16666667f)",
    "hardsigmoid": "(fminf(fmaxf({a} + 3.0f, 0.0f), 6.0f) * 0.16666667f)",
    "mish": "({a} * tanhf(log1pf(expf({a}))))",
    # min(x, 0) - log1p(exp(-|x|)): no overflow for large |x| (lowered from log_sigmoid_forward)
    "log_sigmoid": "(fminf({a}, 0.0f) - log1pf(expf(-fabsf({a}))))",
    "logical_not": "(!{a})",
    "isnan": "({a} != {a})",
    "bitwise_not": "(!{a})",  # bool operands only (see is_pointwise)
}
_BINARY: dict[str, str] = {
    "mul": "({a} * {b})",
    "div": "({a} / {b})",
    "maximum": "fmaxf({a}, {b})",
    "minimum": "fminf({a}, {b})",
    "fmax": "fmaxf({a}, {b})",
    "fmin": "fminf({a}, {b})",
    "pow": "powf({a}, {b})",
    "atan2": "atan2f({a}, {b})",
    "gt": "({a} > {b})",
    "lt": "({a} < {b})",
    "ge": "({a} >= {b})",
    "le": "({a} <= {b})",
    "eq": "({a} == {b})",
    "ne": "({a} != {b})",
    "logical_and": "({a} && {b})",
    "logical_or": "({a} || {b})",
    # x * log(y), 0 where x == 0 (NaN y stays NaN), as torch.xlogy
    "xlogy": "({b} != {b} ? {b} : ({a} == 0.0f ? 0.0f : {a} * logf({b})))",
}
_IDENTITY = {"id", "alias", "detach", "clone", "lift_fresh_copy", "contiguous"}
POINTWISE = (set(_UNARY) | set(_BINARY) | _IDENTITY
             | {"add", "sub", "rsub", "gelu", "leaky_relu", "softplus", "elu", "clamp", "clamp_min",
                "clamp_max", "hardtanh", "where", "masked_fill", "cast", "lerp", "addcmul", "threshold",
                "celu", "hardshrink", "softshrink", "logit", "_prelu_kernel"})


def _second(node: Node) -> str:
    return "other" if "other" in node.args else "exponent"


def expr(node: Node, x: Operand) -> str:
    """C expression for pointwise ``node``; ``x(arg)`` gives an operand's C code."""
    op = node.op
    if op in _IDENTITY:
        return x("self")
    if op == "cast":
        return x("self")  # the conversion itself is the load/round of the result type
    if op in _UNARY:
        return _UNARY[op].format(a=x("self"))
    if op == "pow":
        if "exponent" in node.args and not isinstance(node.args["exponent"], Node) and "exponent" not in node.attrs:
            return _pow_scalar(x("self"), node.args["exponent"])
        if "self" in node.args and not isinstance(node.args["self"], Node):
            return f"powf({x('self')}, {x('exponent')})"
        return f"powf({x('self')}, {x('exponent')})"
    if op in _BINARY:
        return _BINARY[op].format(a=x("self"), b=x(_second(node)))
    if op in ("add", "sub"):
        alpha = node.args.get("alpha", 1)
        b = x("other") if alpha == 1 and "alpha" not in node.attrs else f"({x('alpha')} * {x('other')})"
        return f"({x('self')} {'+' if op == 'add' else '-'} {b})"
    if op == "rsub":
        alpha = node.args.get("alpha", 1)
        a = x("self") if alpha == 1 and "alpha" not in node.attrs else f"({x('alpha')} * {x('self')})"
        return f"({x('other')} - {a})"
    if op == "gelu":
        a = x("self")
        if node.args.get("approximate", "none") == "tanh":
            return (f"(0.5f * {a} * (1.0f + tanhf(0.7978845608028654f * "
                    f"({a} + 0.044715f * {a} * {a} * {a}))))")
        return f"(0.5f * {a} * (1.0f + erff({a} * 0.7071067811865476f)))"
    if op == "leaky_relu":
        a = x("self")
        return f"({a} > 0.0f ? {a} : {a} * {x('negative_slope')})"
    if op == "softplus":
        a, beta, th = x("self"), x("beta"), x("threshold")
        return f"(({a} * {beta}) > {th} ? {a} : log1pf(expf({a} * {beta})) / {beta})"
    if op == "elu":
        a = x("self")
        return (f"({a} > 0.0f ? {a} * {x('scale')} : "
                f"expm1f({a} * {x('input_scale')}) * ({x('alpha')} * {x('scale')}))")
    if op == "celu":
        a, alpha = x("self"), x("alpha")
        return f"({a} > 0.0f ? {a} : {alpha} * expm1f({a} / {alpha}))"
    if op == "hardshrink":  # NaN is neither inside nor outside: kept, as PyTorch does
        a, lambd = x("self"), x("lambd")
        return f"(({a} >= -{lambd} && {a} <= {lambd}) ? 0.0f : {a})"
    if op == "softshrink":  # a * 0 in the middle keeps NaN
        a, lambd = x("self"), x("lambd")
        return f"({a} > {lambd} ? {a} - {lambd} : ({a} < -{lambd} ? {a} + {lambd} : {a} * 0.0f))"
    if op == "logit":
        a = x("self")
        if node.args.get("eps") is not None:
            a = f"fminf(fmaxf({a}, {x('eps')}), 1.0f - {x('eps')})"
        return f"logf({a} / (1.0f - {a}))"
    if op == "_prelu_kernel":
        a = x("self")
        return f"({a} > 0.0f ? {a} : {x('weight')} * {a})"
    if op == "threshold":
        a = x("self")
        return f"({a} <= {x('threshold')} ? {x('value')} : {a})"
    if op in ("clamp", "hardtanh", "clamp_min", "clamp_max"):
        return _clamp(node, x)
    if op == "where":
        return f"({x('condition')} ? {x('self')} : {x('other')})"
    if op == "masked_fill":
        return f"({x('mask')} ? {x('value')} : {x('self')})"
    if op == "lerp":
        return f"({x('self')} + {x('weight')} * ({x('end')} - {x('self')}))"
    if op == "addcmul":
        return f"({x('self')} + {x('value')} * {x('tensor1')} * {x('tensor2')})"
    raise Unsupported(f"aten.{op} is not a pointwise op the rules translate", node.line)


def _pow_scalar(a: str, e: float) -> str:
    table = {2: f"({a} * {a})", 3: f"({a} * {a} * {a})", 1: a, 0.5: f"sqrtf({a})",
             -0.5: f"rsqrtf({a})", -1: f"(1.0f / {a})", -2: f"(1.0f / ({a} * {a}))", 0: "1.0f"}
    if e in table:
        return table[e]
    return f"powf({a}, {float(e)!r}f)"


def _clamp(node: Node, x: Operand) -> str:
    a = x("self")
    lo_name, hi_name = {"clamp": ("min", "max"), "hardtanh": ("min_val", "max_val"),
                        "clamp_min": ("min", None), "clamp_max": (None, "max")}[node.op]
    out = a
    if lo_name and node.args.get(lo_name) is not None:
        out = f"fmaxf({out}, {x(lo_name)})"
    if hi_name and node.args.get(hi_name) is not None:
        out = f"fminf({out}, {x(hi_name)})"
    return out


def is_pointwise(node: Node) -> bool:
    if node.op not in POINTWISE:
        return False
    if node.op == "div" and node.args.get("rounding_mode") is not None:
        return False
    if node.op == "gelu" and node.args.get("approximate", "none") not in ("none", "tanh"):
        return False
    if node.op == "bitwise_not" and node.dtype != "bool":
        return False
    if node.op == "xlogy" and not all(isinstance(node.args.get(k), Node) for k in ("self", "other")):
        return False
    return True
