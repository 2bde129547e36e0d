"""Specific patterns the lowering recognizes before breaking ops apart.

* ``rotate_half``: ``cat((-x[..., h:], x[..., :h]), -1)`` with ``2h`` the last size (Llama
  RoPE); becomes one pointwise leaf that reads the other half of the row.
* single-query attention: ``softmax(q k^T * c) v`` over a KV cache, written with ``matmul``
  (ATen: views, ``bmm``, ``_softmax``), with fp32 upcasts of q, k, v; becomes one decode
  attention node. The scale ``c`` is kept as ``1/sqrt(head_dim)`` when it equals it.
"""

from __future__ import annotations

import math
from typing import Any

from evolution.proposers.rules.ir import Node

_VIEWS = {"view", "_unsafe_view", "reshape", "expand", "unsqueeze", "squeeze", "alias", "detach",
          "clone", "flatten", "unflatten"}
_END = 2**62


def strip(node: Node, ops: set[str] = _VIEWS) -> Node:
    while node.op in ops and isinstance(node.args.get("self"), Node):
        node = node.args["self"]
    return node


def _last(node: Node, dim: Any) -> bool:
    return isinstance(dim, int) and dim % max(1, len(node.shape)) == len(node.shape) - 1


def rotate_half_source(cat: Node) -> Node | None:
    """``x`` when ``cat`` is ``cat((-x[..., h:], x[..., :h]), -1)``, else None."""
    tensors = cat.args.get("tensors")
    if cat.op != "cat" or not isinstance(tensors, list) or len(tensors) != 2 or not _last(cat, cat.args.get("dim")):
        return None
    first, second = tensors
    if first.op != "neg" or second.op != "slice":
        return None
    hi = first.args["self"]
    if hi.op != "slice":
        return None
    x = hi.args["self"]
    if second.args["self"] is not x or not x.shape:
        return None
    size = x.shape[-1]
    if size % 2 or not (_last(x, hi.args.get("dim")) and _last(x, second.args.get("dim"))):
        return None
    half = size // 2
    hi_ok = hi.args.get("start") == half and (hi.args.get("end") or _END) >= size and hi.args.get("step", 1) == 1
    lo_ok = (second.args.get("start") or 0) == 0 and second.args.get("end") == half and second.args.get("step", 1) == 1
    return x if hi_ok and lo_ok else None


def _upcast_source(node: Node) -> Node:
    node = strip(node)
    if node.op == "_to_copy" and isinstance(node.args.get("self"), Node):
        return strip(node.args["self"])
    return node


def match_attention(top: Node) -> dict[str, Any] | None:
    """Match ``[cast](views(bmm(views(softmax(S)), views(v))))``; returns the pieces or None."""
    out_dtype = top.dtype
    node = top
    if node.op == "_to_copy":
        node = node.args["self"]
    bmm2 = strip(node)
    if bmm2.op != "bmm":
        return None
    probs = strip(bmm2.args["self"])
    if probs.op != "_softmax" or probs.args.get("half_to_float") or not _last(probs, probs.args.get("dim")):
        return None
    if probs.dtype != "float32" or bmm2.dtype != "float32":
        return None  # probabilities rounded to half precision: not this kernel's numerics
    scores = probs.args["self"]
    scale: float | None = 1.0
    scale_attr = None
    if scores.op in ("mul", "div") and not isinstance(scores.args.get("other"), Node):
        c = float(scores.args["other"])
        scale = c if scores.op == "mul" else 1.0 / c
        scale_attr = scores.attrs.get("other")
        if scale_attr is not None and scores.op == "div":
            return None
        scores = scores.args["self"]
    bmm1 = strip(scores)
    if bmm1.op != "bmm" or bmm1.dtype != "float32":
        return None
    q = _upcast_source(bmm1.args["self"])
    kt = strip(bmm1.args["mat2"])
    if kt.op != "transpose":
        return None
    k = _upcast_source(kt.args["self"])
    v = _upcast_source(bmm2.args["mat2"])
    if not all(t.op == "input" for t in (q, k, v)):
        return None
    if len(k.shape) != 4 or k.shape != v.shape or k.dtype != v.dtype or q.dtype != k.dtype:
        return None
    b, h, _, d = k.shape
    if q.numel != b * h * d or top.numel != b * h * d or q.shape[-1] != d:
        return None
    dims = {kt.args.get("dim0") % 4, kt.args.get("dim1") % 4} if len(kt.shape) == 4 else set()
    if dims != {2, 3}:
        return None
    by_dim = scale_attr is None and math.isclose(scale, 1.0 / math.sqrt(d), rel_tol=1e-6)
    return {"q": q, "k": k, "v": v, "scale": scale, "scale_attr": scale_attr, "scale_is_rsqrt_d": by_dim,
            "dtype": out_dtype}
