"""Scaled-dot-product attention over whole query tiles (see kern_flash / flash_attention.cu).

Matches, on the ATen graph, ``[cast](views(bmm(views(softmax(S)), views(v))))`` where ``S`` is
``q k^T`` (``bmm`` of views of q and of ``transpose(k, -2, -1)``) times a constant (``mul`` /
``div`` on the scores, or on q and k^T as ``F.scaled_dot_product_attention`` decomposes), with
an optional causal mask: ``masked_fill(S, ~tril(ones) | triu(ones, 1) | tril(ones) == 0, -inf)``,
``where(tril(ones), S, -inf)`` or ``S + where(tril(ones), 0, -inf)`` (SDPA's ``is_causal``).
q, k, v have shape [..., seq, head_dim] (k and v alike), upcast to fp32 or not: inputs, or
values a kernel writes first (scaled, activated, head-split views, unbound from one tensor);
softmax is ``_softmax`` or ``_safe_softmax`` over the last dim. Decode attention (one query per
head) is ``patterns.match_attention``'s and is tried first.
"""

from __future__ import annotations

import math
from typing import Any

from evolution.proposers.rules.ir import Node
from evolution.proposers.rules.patterns import _last, strip

_CASTS = {"_to_copy"}


def _source(node: Node) -> Node:
    node = strip(node)
    while node.op in _CASTS and isinstance(node.args.get("self"), Node):
        node = strip(node.args["self"])
    return node


def _const(node: Any) -> float | None:
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    if isinstance(node, Node) and node.op in ("scalar_tensor", "full") and node.shape == ():
        value = node.args.get("s", node.args.get("fill_value"))
        return float(value) if isinstance(value, (int, float)) else None
    return None


def _ones(node: Node) -> bool:
    node = _source(node)
    return node.op in ("ones", "ones_like") or (node.op in ("full", "full_like") and node.args.get("fill_value") in (1, True))


def _keep_offset(mask: Node) -> int | None:
    """``off`` when ``mask`` is True exactly where key j <= query i + off (a causal keep-mask)."""
    mask = _source(mask)
    if mask.op == "tril" and _ones(mask.args["self"]):
        return int(mask.args.get("diagonal") or 0)
    if mask.op in ("bitwise_not", "logical_not"):
        return _drop_offset(mask.args["self"])
    if mask.op == "eq" and _const(mask.args.get("other")) == 0.0:
        return _drop_offset(mask.args["self"])
    return None


def _drop_offset(mask: Node) -> int | None:
    """``off`` when ``mask`` is True exactly where key j > query i + off (a causal drop-mask)."""
    mask = _source(mask)
    if mask.op == "triu" and _ones(mask.args["self"]):
        return int(mask.args.get("diagonal") or 0) - 1
    if mask.op in ("bitwise_not", "logical_not"):
        return _keep_offset(mask.args["self"])
    if mask.op == "eq" and _const(mask.args.get("other")) == 0.0:
        return _keep_offset(mask.args["self"])
    return None


def _unmask(scores: Node) -> tuple[Node, int | None] | None:
    """(scores without the mask, causal offset or None); None when a mask is not causal."""
    neg_inf = -math.inf
    if scores.op == "masked_fill" and _const(scores.args.get("value")) == neg_inf:
        off = _drop_offset(scores.args["mask"])
        return (scores.args["self"], off) if off is not None else None
    if scores.op == "where" and _const(scores.args.get("other")) == neg_inf:
        off = _keep_offset(scores.args["condition"])
        return (scores.args["self"], off) if off is not None and isinstance(scores.args["self"], Node) else None
    if scores.op == "add" and isinstance(scores.args.get("other"), Node):
        bias = _source(scores.args["other"])
        if (bias.op == "where" and _const(bias.args.get("self")) == 0.0
                and _const(bias.args.get("other")) == neg_inf):
            off = _keep_offset(bias.args["condition"])
            return (scores.args["self"], off) if off is not None else None
        return None
    return scores, None


def _scaled(node: Node) -> tuple[Node, float, Any]:
    """(node without a constant scale, the scale, the scale's attribute reference or None)."""
    if node.op in ("mul", "div") and _const(node.args.get("other")) is not None:
        c = _const(node.args["other"])
        attr = node.attrs.get("other")
        if node.op == "div":
            if attr is not None or c == 0:
                return node, 1.0, None
            c = 1.0 / c
        return node.args["self"], c, attr
    return node, 1.0, None


def match_flash(top: Node) -> dict[str, Any] | None:
    """The pieces of a scaled-dot-product attention ending at ``top``, or None."""
    node = top.args["self"] if top.op == "_to_copy" and isinstance(top.args.get("self"), Node) else top
    bmm2 = strip(node)
    if bmm2.op != "bmm":
        return None
    probs = _source(bmm2.args["self"])
    if probs.op not in ("_softmax", "_safe_softmax") or not _last(probs, probs.args.get("dim")):
        return None
    if probs.op == "_softmax" and probs.args.get("half_to_float"):
        return None
    scores = probs.args["self"]
    scale, attrs, off = 1.0, [], None
    for _ in range(2):  # the mask and the scale, in either order
        scores, c, attr = _scaled(scores)
        scale *= c
        attrs += [attr] if attr is not None else []
        found = _unmask(scores)
        if found is None:
            return None
        scores, o = found
        if o is not None:
            if off is not None:
                return None
            off = o
    bmm1 = strip(scores)
    if bmm1.op != "bmm":
        return None
    qn, cq, aq = _scaled(strip(bmm1.args["self"]))
    ktn, ck, ak = _scaled(strip(bmm1.args["mat2"]))
    kt = strip(ktn)
    if kt.op != "transpose":
        return None
    kn, ck2, ak2 = _scaled(strip(kt.args["self"]))
    q, k, v = _source(qn), _source(kn), _source(bmm2.args["mat2"])
    if any(a is not None for a in (aq, ak, ak2)) or len(attrs) > 1:
        return None
    if len(q.shape) < 2 or k.shape != v.shape or len(k.shape) != len(q.shape):
        return None
    if q.dtype != k.dtype or k.dtype != v.dtype or q.dtype not in ("float32", "bfloat16"):
        return None
    rank = len(kt.shape)
    if {kt.args.get("dim0") % rank, kt.args.get("dim1") % rank} != {rank - 2, rank - 1}:
        return None
    d = q.shape[-1]
    if k.shape[-1] != d or k.shape[:-2] != q.shape[:-2] or top.shape != q.shape:
        return None
    scale *= cq * ck * ck2
    by_dim = not attrs and math.isclose(scale, 1.0 / math.sqrt(d), rel_tol=1e-5)
    return {"q": q, "k": k, "v": v, "scale": scale, "scale_attr": attrs[0] if attrs else None,
            "scale_is_rsqrt_d": by_dim, "causal": off is not None, "off": off or 0, "dtype": top.dtype}
