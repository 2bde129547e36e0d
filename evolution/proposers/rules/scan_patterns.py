"""Cumulative scans as users write them, recognized on the traced graph before lowering.

``scan_spec(node)`` describes the one scan kernel that computes ``node``, or returns None:

* ``torch.cumsum(x, d)`` / ``torch.cumprod(x, d)`` over any dim;
* reversed: ``torch.flip(torch.cumsum(torch.flip(x, [d]), d), [d])`` (``x.flip(d).cumsum(d).flip(d)``);
* exclusive: ``torch.cumsum(x, d) - x`` (also reversed); the cumsum of ``x`` shifted by a
  leading zero, ``torch.cat((zeros, x[..., :-1]), d)``; ``F.pad(torch.cumsum(x, d), (1, 0))[..., :-1]``;
* exclusive with the total (``Lo = L + 1`` outputs, ``pad``): the cumsum of
  ``torch.cat((zeros, x), d)``, or ``F.pad(torch.cumsum(x, d), (1, 0))``;
* a leading slice of dim 0 (``trim0`` rows dropped at its end) before the scan, as
  KernelBench's exclusive cumsum writes ``torch.cat((zeros, x), dim)[:-1]``.

The spec: ``x`` (the traced node scanned), ``kind`` (sum | prod), ``dim``, ``reverse``,
``exclusive``, ``pad``, ``trim0``. Zero (or one, for products) fills must be the scan's identity.
"""

from __future__ import annotations

from typing import Any

from evolution.proposers.rules.ir import Node

_IDENTITY = {"sum": 0.0, "prod": 1.0}


def _dim(node: Node, dim: Any) -> int | None:
    rank = len(node.shape)
    return dim % rank if isinstance(dim, int) and rank else None


def _fill(node: Node) -> float | None:
    """The constant a fill op (zeros_like, full, ...) makes, else None."""
    if node.op in ("zeros", "zeros_like", "new_zeros"):
        return 0.0
    if node.op in ("ones", "ones_like", "new_ones"):
        return 1.0
    if node.op in ("full", "full_like", "new_full"):
        value = node.args.get("fill_value")
        return float(value) if isinstance(value, (int, float)) else None
    return None


def _drop_last(node: Node, dim: int) -> Node | None:
    """``x`` when ``node`` is ``x[..., :-1]`` along ``dim`` (a slice dropping the last element)."""
    if node.op != "slice" or not isinstance(node.args.get("self"), Node):
        return None
    x = node.args["self"]
    if _dim(x, node.args.get("dim", 0)) != dim or node.args.get("step", 1) != 1:
        return None
    if node.args.get("start") not in (0, None) or node.args.get("end") != -1:
        return None
    return x


def _base(node: Node) -> dict[str, Any] | None:
    kind = {"cumsum": "sum", "cumprod": "prod"}.get(node.op)
    d = _dim(node, node.args.get("dim"))
    src = node.args.get("self")
    if kind is None or d is None or not isinstance(src, Node):
        return None
    trim0 = 0
    if d != 0 and src.op == "slice" and _dim(src, src.args.get("dim", 0)) == 0:  # [:-k] of dim 0
        end = src.args.get("end")
        if (src.args.get("start") in (0, None) and src.args.get("step", 1) == 1 and isinstance(end, int)
                and -src.args["self"].shape[0] < end < 0):
            trim0 = -end
            src = src.args["self"]
    spec = dict(x=src, kind=kind, dim=d, reverse=False, exclusive=False, pad=False, trim0=trim0)
    if src.op == "cat":
        parts = src.args.get("tensors") or []
        if (len(parts) == 2 and all(isinstance(p, Node) for p in parts) and _dim(src, src.args.get("dim", 0)) == d
                and parts[0].shape[d] == 1 and _fill(parts[0]) == _IDENTITY[kind]):
            x = parts[1]
            shifted = _drop_last(x, d)
            spec.update(x=shifted if shifted is not None else x, exclusive=True, pad=shifted is None)
    return spec


def scan_spec(node: Node) -> dict[str, Any] | None:
    """The scan that computes ``node`` (see the module docstring), or None."""
    op = node.op
    if op in ("cumsum", "cumprod"):
        return _base(node)
    inner = node.args.get("self")
    if not isinstance(inner, Node):
        return None
    if op == "flip":
        dims = node.args.get("dims") or []
        spec = scan_spec(inner) if inner.op in ("cumsum", "cumprod") else None
        if spec is None or len(dims) != 1 or _dim(node, dims[0]) != spec["dim"]:
            return None
        src = spec["x"]
        if (src.op != "flip" or len(src.args.get("dims") or []) != 1 or _dim(src, src.args["dims"][0]) != spec["dim"]
                or spec["exclusive"] or spec["trim0"]):
            return None
        return dict(spec, x=src.args["self"], reverse=True)
    if op == "sub":
        spec = scan_spec(inner)
        other = node.args.get("other")
        if (spec is None or spec["kind"] != "sum" or spec["exclusive"] or spec["trim0"] or other is not spec["x"]
                or node.args.get("alpha", 1) != 1 or node.shape != inner.shape or node.dtype != inner.dtype):
            return None
        return dict(spec, exclusive=True)
    if op == "constant_pad_nd":
        spec = scan_spec(inner)
        pad = list(node.args.get("pad") or [])
        if spec is None or spec["exclusive"] or spec["reverse"] or spec["trim0"] or len(pad) % 2:
            return None
        rank = len(inner.shape)
        want = [0] * len(pad)
        i = rank - 1 - spec["dim"]
        if 2 * i + 1 >= len(pad):
            return None
        want[2 * i] = 1
        if pad != want or float(node.args.get("value") or 0.0) != _IDENTITY[spec["kind"]]:
            return None
        return dict(spec, exclusive=True, pad=True)
    if op == "slice":
        if inner.op not in ("cumsum", "cumprod", "constant_pad_nd"):
            return None
        spec = scan_spec(inner)
        if spec is None or not spec["pad"] or _drop_last(node, spec["dim"]) is None:
            return None
        return dict(spec, pad=False)
    return None
