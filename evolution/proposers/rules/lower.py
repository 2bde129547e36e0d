"""Lower the traced ATen graph into the rules' primitives.

After lowering every node is one of: a leaf (``input``, ``param``, ``const``); a view
(``view``: a reshape that keeps element order, ``expand``, ``t`` / ``transpose``); a
pointwise op (see ``ops``; ``cast`` converts dtype); ``red`` (a reduction over one contiguous
block of dims, trailing or not: ``kind`` sum, mean, prod, max, min, argmax, argmin, lse, var);
``red_all`` (over every element); ``gather`` (one element per row, at an index); ``cumsum`` (a
scan: sum or prod over ``dim``, reversed, exclusive; see ``scan_patterns``); ``gemm`` (a matrix
product for the rules' own kernel, its operands and result as groups of contiguous tensors' dims,
see ``gemm_layout``, a fused triu / tril in ``tri``); ``mm`` / ``conv`` (the GEMM and convolution
that stay in cuBLAS / cuDNN under the hybrid policy); ``dconv`` (a convolution under the strict
policy, bias included, for the rules' own kernel); ``pool`` (max / avg
pooling over the trailing 1-3 dims, its window as constants); ``rotate_half``;
``attention``; ``rowview`` / ``gchan`` / ``unrowview`` (group norm's [N*G, C/G*HW] rows).

Composite ops (softmax, norms, losses) become primitives whose intermediates are fp32, with
only the op's own result in its output dtype: a bf16 ``softmax`` rounds once, as eager does.
Lowering is lazy from the outputs, so pieces a pattern consumed (rotate_half's slices) are
never asked for.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch.nn as nn

from evolution.proposers.rules import gemm_layout, ops, patterns, patterns_flash, scan_patterns
from evolution.proposers.rules.ir import AttrRef, Graph, Node, Scalar, SizeRef, Unsupported
from evolution.proposers.rules.plan import reduced_blocks

F32 = "float32"
_VIEW_OPS = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten", "unflatten",
             "view_as", "_reshape_alias"}
_RED_OPS = {"sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "logsumexp", "var",
            "std", "linalg_vector_norm", "prod", "norm"}
_CONST_OPS = {"full", "scalar_tensor", "ones", "zeros", "full_like", "ones_like", "zeros_like"}


class Lowering:
    def __init__(self, graph: Graph, policy: str) -> None:
        self.graph = graph
        self.policy = policy
        self.memo: dict[int, Any] = {}
        self.nodes: list[Node] = []
        self.users = graph.users()
        # GEMM kernels: the traced GEMM node -> (last view of its result folded in, that view's
        # groups of C's atoms); and that view's id -> the GEMM node (lowered as the GEMM)
        self.gemm_fold: dict[int, tuple[Node, list]] = {}
        self.fold_end: dict[int, Node] = {}

    # -- helpers ------------------------------------------------------------------------------
    def new(self, op: str, args: dict[str, Any], shape: tuple[int, ...], dtype: str, like: Node) -> Node:
        node = Node(op, args, tuple(shape), dtype, like.line)
        self.nodes.append(node)
        return node

    def scalar(self, node: Node, name: str) -> Any:
        value = node.args.get(name)
        if name in node.attrs:
            return Scalar(value, node.attrs[name])
        if name in node.sizes:
            index, dim = node.sizes[name]
            return Scalar(value, SizeRef(self.graph.inputs[index].name, dim=dim))
        if name in node.moving:
            raise Unsupported(f"argument {name} of aten.{node.op} changes with the input shape", node.line)
        return value

    def arg(self, node: Node, name: str) -> Any:
        value = node.args.get(name)
        if isinstance(value, Node):
            return self.get(value)
        if isinstance(value, list) and any(isinstance(v, Node) for v in value):
            return [self.get(v) if isinstance(v, Node) else v for v in value]
        return self.scalar(node, name)

    def get(self, node: Node) -> Any:
        if node.id not in self.memo:
            self.memo[node.id] = self.lower(node)
        return self.memo[node.id]

    def run(self) -> Graph:
        self._plan_gemm_folds()
        outputs = []
        for out in self.graph.outputs:
            value = self.get(out)
            if not isinstance(value, Node):
                raise Unsupported(f"output aten.{out.op} is not one tensor", out.line)
            outputs.append(value)
        g = self.graph
        return Graph(self.nodes, g.inputs, g.params, outputs, g.output_tuple, g.arg_names, g.model)

    # -- dispatch -----------------------------------------------------------------------------
    def lower(self, node: Node) -> Any:
        op = node.op
        if node.is_leaf:
            self.nodes.append(node)
            return node
        if op == "getitem":
            parts = self.get(node.args["self"])
            if isinstance(parts, tuple) and callable(parts[node.index]):
                return parts[node.index]()  # an output built only when the forward uses it
            if not isinstance(parts, tuple) or parts[node.index] is None:
                raise Unsupported(f"output {node.index} of aten.{node.args['self'].op}", node.line)
            return parts[node.index]
        if op in _VIEW_OPS or op in ("_to_copy", "bmm"):
            found = patterns.match_attention(node)
            if found is not None:
                return self.attention(node, found)
            found = patterns_flash.match_flash(node)
            if found is not None:
                return self.flash(node, found)
        if node.id in self.fold_end:  # the last view of a GEMM's result: the GEMM itself
            return self.get(self.fold_end[node.id])
        if op == "_to_copy":
            return self.cast(node)
        if op in _VIEW_OPS:
            x = self.arg(node, "self")
            if isinstance(x, Node) and x.shape == node.shape and x.op != "input" and x.op != "param":
                return x  # a view that changes nothing (after a rewrite such as InstanceNorm's)
            if isinstance(x, Node) and x.op == "view" and x.args["self"].op in ("pool", "pool_indices", "dconv") and \
                    x.args["self"].shape == node.shape:
                return x.args["self"]  # max_pool1d's (an unbatched conv's) squeeze undoing the view of a pool (conv)
            return self.new("view", {"self": x}, node.shape, node.dtype, node)
        if op == "expand":
            return self.new("expand", {"self": self.arg(node, "self")}, node.shape, node.dtype, node)
        if op in ("t", "transpose", "permute"):
            args = {k: self.arg(node, k) for k in node.args}
            return self.new(op, args, node.shape, node.dtype, node)
        if op in _CONST_OPS and node.shape == ():
            value = node.args.get("fill_value", node.args.get("s", 1.0 if "ones" in op else 0.0))
            return self.new("const", {"value": value}, node.shape, node.dtype, node)
        if op == "cat":
            x = patterns.rotate_half_source(node)
            if x is None:
                raise Unsupported("aten.cat (only Llama's rotate_half concatenation is translated)", node.line)
            return self.new("rotate_half", {"self": self.get(x)}, node.shape, node.dtype, node)
        if op == "_to_copy_attention":
            raise Unsupported("aten.bmm (only single-query decode attention is translated)", node.line)
        handler = getattr(self, f"op_{op}", None)
        if handler is not None:
            return handler(node)
        if op in _RED_OPS:
            return self.reduction(node)
        if ops.is_pointwise(node):
            return self.pointwise(node)
        raise Unsupported(f"aten.{op}.{node.name or 'default'} has no rule", node.line)

    def pointwise(self, node: Node) -> Node:
        args = {k: self.arg(node, k) for k in node.args}
        return self.new(node.op, args, node.shape, node.dtype, node)

    def cast(self, node: Node) -> Node:
        x = self.arg(node, "self")
        if x.dtype == node.dtype:
            return x
        return self.new("cast", {"self": x}, node.shape, node.dtype, node)

    def attention(self, node: Node, found: dict[str, Any]) -> Node:
        args = {k: self.get(found[k]) for k in ("q", "k", "v")}
        scale = Scalar(found["scale"], found["scale_attr"]) if found["scale_attr"] else found["scale"]
        args.update(scale=scale, scale_is_rsqrt_d=found["scale_is_rsqrt_d"])
        return self.new("attention", args, node.shape, found["dtype"], node)

    def flash(self, node: Node, found: dict[str, Any]) -> Node:
        """Scaled-dot-product attention over query tiles (``patterns_flash``)."""
        args = {k: self.get(found[k]) for k in ("q", "k", "v")}
        scale = Scalar(found["scale"], found["scale_attr"]) if found["scale_attr"] else found["scale"]
        args.update(scale=scale, scale_is_rsqrt_d=found["scale_is_rsqrt_d"], causal=found["causal"],
                    off=found["off"])
        return self.new("flash", args, node.shape, found["dtype"], node)

    # -- reductions ---------------------------------------------------------------------------
    def _dims(self, node: Node, x: Node) -> list[int] | None:
        """Reduced dims, normalized; None when every dim is reduced."""
        dims = node.args.get("dim")
        rank = len(x.shape)
        if dims is None or dims == []:
            return None
        dims = [dims] if isinstance(dims, int) else list(dims)
        dims = sorted({d % rank for d in dims}) if rank else []
        if len(dims) == rank:
            return None
        return dims  # a set of blocks apart from each other is reduced block by block (``red``)

    def red(self, kind: str, x: Node, dims: list[int] | None, keepdim: bool, like: Node,
            dtype: str = F32, shape: tuple[int, ...] | None = None, identity: bool = True, **extra: Any) -> Node:
        if shape is None:
            if dims is None:
                shape = tuple(1 for _ in x.shape) if keepdim else ()
            else:
                shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape)) if keepdim else \
                    tuple(s for i, s in enumerate(x.shape) if i not in dims)
        if identity and dims and all(x.shape[d] == 1 for d in dims) and x.numel and shape == x.shape:
            return self._red_of_one(kind, x, dims, keepdim, like, dtype, shape, extra.get("correction", 0))
        if dims is not None:
            blocks = reduced_blocks(x.shape, dims)
            if len(blocks) > 1:
                return self._red_blocks(kind, x, dims, blocks, keepdim, like, dtype, shape, **extra)
        if dims is None:
            return self.new("red_all", {"self": x, "kind": kind, **extra}, shape, dtype, like)
        return self.new("red", {"self": x, "kind": kind, "dims": dims, "keepdim": keepdim, **extra},
                        shape, dtype, like)

    def _red_of_one(self, kind: str, x: Node, dims: list[int], keepdim: bool, like: Node, dtype: str,
                    shape: tuple[int, ...], correction: Any) -> Node:
        """A reduction over dims of size 1 (rows of one element) whose result keeps them: the
        element itself, computed pointwise. A row kernel cannot tell such a row's values from
        its results (same shape), so these never reach one. NaN and infinities come out as PyTorch's: var is
        (x - x)^2 / (1 - correction) (NaN for an infinite x, or with correction 1)."""
        if kind in ("argmax", "argmin"):
            never = self.new("lt", {"self": x, "other": x}, x.shape, "bool", like)  # False, NaN too
            value = self.new("cast", {"self": never}, x.shape, "int64", like)
        elif kind == "var":
            d = self.new("sub", {"self": x, "other": x}, x.shape, F32, like)
            sq = self.new("mul", {"self": d, "other": d}, x.shape, F32, like)
            value = self.new("div", {"self": sq, "other": float(1 - correction)}, x.shape, F32, like)
        elif kind in ("sum", "mean", "max", "min", "prod", "lse"):
            value = self.new("cast", {"self": x}, x.shape, F32 if dtype == F32 else dtype, like)
        else:
            raise Unsupported(f"a {kind} reduction over dims of size 1", like.line)
        if value.dtype != dtype:
            value = self.new("cast", {"self": value}, shape, dtype, like)
        return value

    def _red_blocks(self, kind: str, x: Node, dims: list[int], blocks: list[list[int]], keepdim: bool,
                    like: Node, dtype: str, shape: tuple[int, ...], **extra: Any) -> Node:
        """A reduction over dims apart from each other (kept dims between them), one block of
        adjacent dims at a time, innermost first: the first step reads the input once and leaves
        a tensor smaller by the innermost block; sum, mean (equal-sized blocks), max, min, prod
        and logsumexp compose exactly, and the variance is the sum of squared deviations
        from the mean over the count."""
        if kind == "var":
            return self._var_blocks(x, dims, blocks, keepdim, like, dtype, shape, extra.get("correction", 0))
        if kind not in ("sum", "mean", "max", "min", "prod", "lse"):
            raise Unsupported(f"a {kind} reduction over dims {sorted(dims)} of a {list(x.shape)} tensor "
                              "(kept dims lie between reduced ones; it does not compose block by block)", like.line)
        current, done = x, []
        for block in blocks[:-1]:
            current = self.red(kind, current, block, True, like)
            done += block
        # the last block with the earlier ones, now of size 1: one block, and the result's shape
        return self.red(kind, current, sorted(blocks[-1] + done), keepdim, like, dtype=dtype, shape=shape)

    def _var_blocks(self, x: Node, dims: list[int], blocks: list[list[int]], keepdim: bool, like: Node,
                    dtype: str, shape: tuple[int, ...], correction: Any) -> Node:
        """The variance over blocks apart from each other by the law of total variance, block
        by block (equal-sized groups): var = mean of the inner variances + variance of the inner
        means. Each step is a one-block mean and variance, so no reduction waits on another
        region's result of its own shape."""
        means, var, done = x, None, []
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            red_dims, keep, out = (sorted(block + done), keepdim, shape) if last else (block, True, None)
            mean = self.red("mean", means, red_dims, True, like)
            step = self.red("var", means, red_dims, keep, like, shape=out, mean=mean, correction=0)
            if var is not None:
                inner = self.red("mean", var, red_dims, keep, like, shape=out)
                step = self.new("add", {"self": step, "other": inner}, step.shape, F32, like)
            means, var, done = mean, step, done + block
        count = math.prod(x.shape[d] for d in dims)
        if not correction:
            return self.new("mul", {"self": var, "other": 1.0}, shape, dtype, like)
        scaled = self.new("mul", {"self": var, "other": float(count)}, shape, F32, like)
        return self.new("div", {"self": scaled, "other": float(count - correction)}, shape, dtype, like)

    def reduction(self, node: Node) -> Any:
        x = self.arg(node, "self")
        if not isinstance(x, Node):
            raise Unsupported(f"aten.{node.op} of a scalar", node.line)
        unpermuted = self._unpermuted(node, x)
        if unpermuted is None:
            return self._reduction(node, x, self._dims(node, x), node.shape)
        base, dims, shape = unpermuted
        result = self._reduction(node, base, dims, shape)
        view_dims = self._dims(node, x)
        if view_dims is None or not node.args.get("keepdim"):
            return result
        # keepdim: the size-1 dims sit where the view put them; the same elements in the same order
        kept = tuple(1 if d in view_dims else s for d, s in enumerate(x.shape))
        parts = result if isinstance(result, tuple) else (result,)
        views = tuple(None if r is None else self.new("view", {"self": r}, kept, r.dtype, node) for r in parts)
        return views if isinstance(result, tuple) else views[0]

    def _unpermuted(self, node: Node, x: Node) -> tuple[Node, list[int] | None, tuple[int, ...]] | None:
        """(base, its reduced dims, the result's shape in the base's order) when ``x`` is a
        transpose / permute of ``base`` and the kept dims keep their order: a reduction over a
        permuted dim is one over the base's dim, so the kernels read the base in its own memory
        order and no transposed copy is made. None otherwise (the planner copies the view)."""
        perm, base = permutation(x)
        if perm is None:
            return None
        dims = self._dims(node, x)
        keepdim = bool(node.args.get("keepdim", False))
        if dims is None:  # every element: the order does not matter, except to a flattened index
            if node.op in ("argmax", "argmin") and len(x.shape) > 1:
                return None
            return base, None, node.shape
        kept = [perm[d] for d in range(len(x.shape)) if d not in dims]
        if kept != sorted(kept):
            return None
        dims = sorted(perm[d] for d in dims)
        shape = tuple(1 if i in dims else s for i, s in enumerate(base.shape)) if keepdim else \
            tuple(s for i, s in enumerate(base.shape) if i not in dims)
        return base, dims, shape

    def _reduction(self, node: Node, x: Node, dims: list[int] | None, shape: tuple[int, ...]) -> Any:
        """aten reduction ``node`` of ``x`` over ``dims`` (None: every dim), giving ``shape``."""
        op = node.op
        keepdim = bool(node.args.get("keepdim", False))
        if op in ("max", "min") and node.name == "dim":
            values = self.red(op, x, dims, keepdim, node, dtype=x.dtype)
            used = {u.index for u in self.graph.users().get(node.id, []) if u.op == "getitem"}
            index = self.red("arg" + op, x, dims, keepdim, node, dtype="int64") if 1 in used else None
            return (values, index)
        if op in ("max", "min"):
            return self.red(op, x, None, False, node, dtype=node.dtype, shape=shape)
        if op in ("amax", "amin"):
            return self.red(op[1:], x, dims, keepdim, node, dtype=node.dtype, shape=shape)
        if op in ("argmax", "argmin"):
            if dims is None and len(x.shape) > 1:  # the index into the flattened tensor: one long row
                return self.red(op, x, list(range(len(x.shape))), keepdim, node, dtype="int64", shape=shape)
            return self.red(op, x, dims, keepdim, node, dtype="int64", shape=shape)
        if op in ("sum", "mean"):
            return self.red(op, x, dims, keepdim, node, dtype=node.dtype, shape=shape)
        if op == "prod":
            if node.dtype not in ops_float():
                raise Unsupported(f"aten.prod producing {node.dtype}", node.line)
            if dims is None and x.shape:  # every element: one long row (split across blocks)
                dims = list(range(len(x.shape)))
            return self.red(op, x, dims, keepdim, node, dtype=node.dtype, shape=shape)
        if op == "logsumexp":
            return self.red("lse", x, dims, keepdim, node, dtype=node.dtype, shape=shape)
        if op in ("var", "std"):
            correction = node.args.get("correction")
            correction = 1 if correction is None else correction
            if dims is None and x.shape:  # every element: one long row (split across blocks), as argmax
                dims = list(range(len(x.shape)))
            # (a mean over dims of size 1 is the element itself only where the var is too: keepdim)
            mean = self.red("mean", x, dims, True, node, identity=keepdim)
            var = self.red("var", x, dims, keepdim, node, dtype=node.dtype if op == "var" else F32,
                           mean=mean, correction=correction)
            if op == "var":
                return var
            return self.new("sqrt", {"self": var}, var.shape, node.dtype, node)
        if op in ("linalg_vector_norm", "norm"):
            order = node.args.get("ord", 2) if op == "linalg_vector_norm" else node.args.get("p")
            order = 2 if order is None else order
            if order == 2:
                sq = self.new("mul", {"self": x, "other": x}, x.shape, F32, node)
                s = self.red("sum", sq, dims, keepdim, node)
                return self.new("sqrt", {"self": s}, s.shape, node.dtype, node)
            if order == 1:
                a = self.new("abs", {"self": x}, x.shape, F32, node)
                return self.red("sum", a, dims, keepdim, node, dtype=node.dtype, shape=shape)
            raise Unsupported(f"aten.linalg_vector_norm with ord={order}", node.line)
        raise Unsupported(f"aten.{op}", node.line)

    # -- composite ops ------------------------------------------------------------------------
    def _softmax_parts(self, node: Node) -> tuple[Node, Node, Node, Node]:
        x = self.arg(node, "self")
        rank = len(x.shape)
        dim = node.args.get("dim")
        if rank == 0:
            raise Unsupported(f"aten.{node.op} of a scalar", node.line)
        dims = [dim % rank]
        m = self.red("max", x, dims, True, node)
        d = self.new("sub", {"self": x, "other": m}, x.shape, F32, node)
        e = self.new("exp", {"self": d}, x.shape, F32, node)
        s = self.red("sum", e, dims, True, node)
        return x, d, e, s

    def op__softmax(self, node: Node) -> Node:
        x, _, e, s = self._softmax_parts(node)
        return self.new("div", {"self": e, "other": s}, node.shape, node.dtype, node)

    def op_log_sigmoid_forward(self, node: Node) -> tuple[Node, None]:
        """F.logsigmoid: the value (its second result is a buffer only autograd reads)."""
        x = self.arg(node, "self")
        return (self.new("log_sigmoid", {"self": x}, x.shape, x.dtype, node), None)

    def op_glu(self, node: Node) -> Node:
        """F.glu: the first half times the sigmoid of the second, halves along ``dim`` (slices,
        copied into contiguous tensors where they are strided)."""
        x = self.arg(node, "self")
        dim = node.args.get("dim", -1) % len(x.shape)
        half = x.shape[dim] // 2
        shape = node.shape

        def part(start: int, end: int) -> Node:
            return self.new("slice", {"self": x, "dim": dim, "start": start, "end": end, "step": 1},
                            shape, x.dtype, node)

        a, b = part(0, half), part(half, 2 * half)
        sig = self.new("sigmoid", {"self": b}, shape, x.dtype, node)
        return self.new("mul", {"self": a, "other": sig}, shape, node.dtype, node)

    def op_rrelu_with_noise(self, node: Node) -> Node:
        """RReLU in eval mode: a leaky ReLU with the mean slope (lower + upper) / 2."""
        if node.args.get("training"):
            raise Unsupported("aten.rrelu_with_noise in training mode (random slopes)", node.line)
        slope = (float(self.scalar(node, "lower")) + float(self.scalar(node, "upper"))) / 2
        return self.new("leaky_relu", {"self": self.arg(node, "self"), "negative_slope": slope}, node.shape,
                        node.dtype, node)

    def op__log_softmax(self, node: Node) -> Node:
        x, d, _, s = self._softmax_parts(node)
        ls = self.new("log", {"self": s}, s.shape, F32, node)
        return self.new("sub", {"self": d, "other": ls}, node.shape, node.dtype, node)

    def _normalize(self, x: Node, dims: list[int], eps: Any, w: Node | None, b: Node | None,
                   node: Node, out_dtype: str, shape: tuple[int, ...]) -> tuple[Node, Node, Node]:
        mean = self.red("mean", x, dims, True, node)
        var = self.red("var", x, dims, True, node, mean=mean, correction=0)
        ve = self.new("add", {"self": var, "other": eps}, var.shape, F32, node)
        rstd = self.new("rsqrt", {"self": ve}, var.shape, F32, node)
        xc = self.new("sub", {"self": x, "other": mean}, shape, F32, node)
        last = w is None and b is None
        y = self.new("mul", {"self": xc, "other": rstd}, shape, out_dtype if last else F32, node)
        if w is not None:
            y = self.new("mul", {"self": y, "other": w}, shape, out_dtype if b is None else F32, node)
        if b is not None:
            y = self.new("add", {"self": y, "other": b}, shape, out_dtype, node)
        return y, mean, rstd

    def op_native_layer_norm(self, node: Node) -> tuple[Node, Node, Node]:
        x = self.arg(node, "input")
        k = len(node.args["normalized_shape"])
        rank = len(x.shape)
        dims = list(range(rank - k, rank))
        w, b = self.arg(node, "weight"), self.arg(node, "bias")
        out_dtype = x.dtype
        return self._normalize(x, dims, self.scalar(node, "eps"), w, b, node, out_dtype, x.shape)

    def op_native_batch_norm(self, node: Node) -> tuple[Node, None, None]:
        """Inference BatchNorm (running statistics: pointwise) and batch statistics over every
        dim but the channel (InstanceNorm arrives as that, on a [1, N*C, ...] view)."""
        x = self.arg(node, "input")
        rank = len(x.shape)
        if rank < 2:
            raise Unsupported("aten.native_batch_norm of a rank-1 tensor", node.line)
        eps = self.scalar(node, "eps")
        src = x.args.get("self") if x.op == "view" else None
        if (node.args.get("training") and isinstance(src, Node) and x.shape[0] == 1 and len(src.shape) == rank
                and src.shape[0] * src.shape[1] == x.shape[1] and self._views_back(node, src.shape)):
            # InstanceNorm: batch statistics of x.view(1, N*C, ...) viewed back: rows of x itself;
            # its affine weight and bias arrive as weight.repeat(N) (one copy per instance)
            per_channel = [self._per_instance(node.args.get(name), src.shape) for name in ("weight", "bias")]
            if all(v is not False for v in per_channel):
                cshape = (1, src.shape[1]) + (1,) * (rank - 2)
                wv, bv = (None if v is None else self.new("view", {"self": self.get(v)}, cshape, v.dtype, node)
                          for v in per_channel)
                y, _, _ = self._normalize(src, list(range(2, rank)), eps, wv, bv, node, src.dtype, src.shape)
                return (y, None, None)
        w, b = self.arg(node, "weight"), self.arg(node, "bias")
        rm, rv = self.arg(node, "running_mean"), self.arg(node, "running_var")
        bshape = (1, x.shape[1]) + (1,) * (rank - 2)

        def chan(v: Node | None) -> Node | None:
            return None if v is None else self.new("view", {"self": v}, bshape, v.dtype, node)

        w, b = chan(w), chan(b)
        if not node.args.get("training"):
            if rm is None or rv is None:
                raise Unsupported("aten.native_batch_norm in inference without running statistics", node.line)
            ve = self.new("add", {"self": chan(rv), "other": eps}, bshape, F32, node)
            rstd = self.new("rsqrt", {"self": ve}, bshape, F32, node)
            xc = self.new("sub", {"self": x, "other": chan(rm)}, x.shape, F32, node)
            last = w is None and b is None
            y = self.new("mul", {"self": xc, "other": rstd}, x.shape, x.dtype if last else F32, node)
            if w is not None:
                y = self.new("mul", {"self": y, "other": w}, x.shape, x.dtype if b is None else F32, node)
            if b is not None:
                y = self.new("add", {"self": y, "other": b}, x.shape, x.dtype, node)
            return (y, None, None)
        dims = [0] + list(range(2, rank))  # apart from each other: reduced block by block (``red``)
        y, _, _ = self._normalize(x, dims, eps, w, b, node, x.dtype, x.shape)
        return (y, None, None)

    @staticmethod
    def _per_instance(value: Any, shape: tuple[int, ...]) -> Node | None | bool:
        """InstanceNorm's affine parameter: ``p.repeat(N)`` of a [C] tensor gives ``p``; None
        stays None; anything else is False (not the pattern)."""
        if value is None:
            return None
        if (isinstance(value, Node) and value.op == "repeat" and isinstance(value.args.get("self"), Node)
                and value.args["self"].shape == (shape[1],) and list(value.args.get("repeats") or []) == [shape[0]]):
            return value.args["self"]
        return False

    def op_repeat(self, node: Node) -> Node:
        raise Unsupported("aten.repeat (the rules read it only as InstanceNorm's per-instance affine "
                          "weight and bias)", node.line)

    def _views_back(self, node: Node, shape: tuple[int, ...]) -> bool:
        """Every use of ``node``'s first result is a view to ``shape`` (InstanceNorm's pattern)."""
        users = self.graph.users()
        firsts = [u for u in users.get(node.id, []) if u.op == "getitem" and u.index == 0]
        return bool(firsts) and all(v.op in _VIEW_OPS and v.shape == shape
                                    for g in firsts for v in users.get(g.id, []))

    def op_native_group_norm(self, node: Node) -> tuple[Node, None, None]:
        x = self.arg(node, "input")
        if len(x.shape) < 2:
            raise Unsupported("aten.native_group_norm of a rank-1 tensor", node.line)
        groups = self._group_count(node)
        n = x.shape[0]
        g = node.args["group"]
        rows = (n * g, x.numel // max(1, n * g))
        xr = self.new("rowview", {"self": x, "groups": groups}, rows, x.dtype, node)
        w, b = self.arg(node, "weight"), self.arg(node, "bias")
        wg = self.new("gchan", {"self": w, "groups": groups}, rows, w.dtype, node) if w is not None else None
        bg = self.new("gchan", {"self": b, "groups": groups}, rows, b.dtype, node) if b is not None else None
        y, _, _ = self._normalize(xr, [1], self.scalar(node, "eps"), wg, bg, node, x.dtype, rows)
        out = self.new("unrowview", {"self": y, "like": x}, x.shape, x.dtype, node)
        return (out, None, None)

    def _group_count(self, node: Node) -> Any:
        """The group count as a runtime value: the GroupNorm module's, when there is one."""
        g = node.args["group"]
        weight = node.args.get("weight")
        model = self.graph.model
        if isinstance(weight, Node) and weight.op == "param" and model is not None:
            path = weight.name.rpartition(".")[0]
            module = model.get_submodule(path) if path else model
            if isinstance(module, nn.GroupNorm) and module.num_groups == g:
                return Scalar(g, AttrRef(f"{path}.num_groups" if path else "num_groups"))
        return g

    def _loss(self, node: Node, elementwise: Node) -> Node:
        reduction = node.args.get("reduction", 1)
        if reduction == 0:
            elementwise.dtype = node.dtype
            return elementwise
        kind = "mean" if reduction == 1 else "sum"
        return self.red(kind, elementwise, None, False, node, dtype=node.dtype, shape=node.shape)

    def _diff(self, node: Node) -> Node:
        a, b = self.arg(node, "self"), self.arg(node, "target")
        if a.shape != b.shape:
            raise Unsupported(f"aten.{node.op} with broadcast operands", node.line)
        return self.new("sub", {"self": a, "other": b}, a.shape, F32, node)

    def op_mse_loss(self, node: Node) -> Node:
        d = self._diff(node)
        return self._loss(node, self.new("mul", {"self": d, "other": d}, d.shape, F32, node))

    def op_l1_loss(self, node: Node) -> Node:
        return self._loss(node, self.new("abs", {"self": self._diff(node)}, node.args["self"].shape, F32, node))

    def _piecewise(self, node: Node, z: Node, limit: Any, small: Node, large: Node) -> Node:
        cond = self.new("lt", {"self": z, "other": limit}, z.shape, "bool", node)
        return self.new("where", {"condition": cond, "self": small, "other": large}, z.shape, F32, node)

    def op_huber_loss(self, node: Node) -> Node:
        z = self.new("abs", {"self": self._diff(node)}, node.args["self"].shape, F32, node)
        delta = self.scalar(node, "delta")
        zz = self.new("mul", {"self": z, "other": z}, z.shape, F32, node)
        small = self.new("mul", {"self": zz, "other": 0.5}, z.shape, F32, node)
        half = scaled(delta, 0.5)
        zd = self.new("sub", {"self": z, "other": half}, z.shape, F32, node)
        large = self.new("mul", {"self": zd, "other": delta}, z.shape, F32, node)
        return self._loss(node, self._piecewise(node, z, delta, small, large))

    def op_smooth_l1_loss(self, node: Node) -> Node:
        z = self.new("abs", {"self": self._diff(node)}, node.args["self"].shape, F32, node)
        beta = self.scalar(node, "beta")
        if not isinstance(beta, Scalar) and beta == 0:
            return self._loss(node, z)
        zz = self.new("mul", {"self": z, "other": z}, z.shape, F32, node)
        half_zz = self.new("mul", {"self": zz, "other": 0.5}, z.shape, F32, node)
        small = self.new("div", {"self": half_zz, "other": beta}, z.shape, F32, node)
        half = scaled(beta, 0.5)
        large = self.new("sub", {"self": z, "other": half}, z.shape, F32, node)
        return self._loss(node, self._piecewise(node, z, beta, small, large))

    def _loss_weight(self, node: Node, loss: Node) -> Node:
        """``loss * weight`` for a weight of the loss's own shape (a broadcast weight is refused)."""
        weight = node.args.get("weight")
        if weight is None:
            return loss
        weight = self.arg(node, "weight")
        if not isinstance(weight, Node) or weight.shape != loss.shape:
            raise Unsupported(f"aten.{node.op} with a weight that is not of the input's shape", node.line)
        return self.new("mul", {"self": loss, "other": weight}, loss.shape, F32, node)

    def op_binary_cross_entropy(self, node: Node) -> Node:
        """As PyTorch's kernel: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100)."""
        x, t = self.arg(node, "self"), self.arg(node, "target")
        if x.shape != t.shape:
            raise Unsupported("aten.binary_cross_entropy with broadcast operands", node.line)
        log_x = self.new("maximum", {"self": self.new("log", {"self": x}, x.shape, F32, node), "other": -100.0},
                         x.shape, F32, node)
        neg_x = self.new("neg", {"self": x}, x.shape, F32, node)
        log_1mx = self.new("maximum", {"self": self.new("log1p", {"self": neg_x}, x.shape, F32, node),
                                       "other": -100.0}, x.shape, F32, node)
        t_m1 = self.new("sub", {"self": t, "other": 1.0}, x.shape, F32, node)
        a = self.new("mul", {"self": t_m1, "other": log_1mx}, x.shape, F32, node)
        b = self.new("mul", {"self": t, "other": log_x}, x.shape, F32, node)
        loss = self.new("sub", {"self": a, "other": b}, x.shape, F32, node)
        return self._loss(node, self._loss_weight(node, loss))

    def op_binary_cross_entropy_with_logits(self, node: Node) -> Node:
        """As PyTorch: (1 - t) * x - log_sigmoid(x) (log_sigmoid(x) * (1 + (pos_weight - 1) * t)
        with a pos_weight), times the weight."""
        x, t = self.arg(node, "self"), self.arg(node, "target")
        if x.shape != t.shape:
            raise Unsupported("aten.binary_cross_entropy_with_logits with broadcast operands", node.line)
        log_sig = self.new("log_sigmoid", {"self": x}, x.shape, F32, node)
        if node.args.get("pos_weight") is not None:
            pos = self.arg(node, "pos_weight")
            if not isinstance(pos, Node) or pos.shape not in (x.shape, x.shape[-1:]):
                raise Unsupported("aten.binary_cross_entropy_with_logits with a pos_weight that is neither per "
                                  "element nor per class (last dim)", node.line)
            pm1 = self.new("sub", {"self": pos, "other": 1.0}, pos.shape, F32, node)
            scale = self.new("add", {"self": self.new("mul", {"self": pm1, "other": t}, x.shape, F32, node),
                                     "other": 1.0}, x.shape, F32, node)
            log_sig = self.new("mul", {"self": log_sig, "other": scale}, x.shape, F32, node)
        one_mt = self.new("add", {"self": self.new("neg", {"self": t}, x.shape, F32, node), "other": 1.0},
                          x.shape, F32, node)
        first = self.new("mul", {"self": one_mt, "other": x}, x.shape, F32, node)
        loss = self.new("sub", {"self": first, "other": log_sig}, x.shape, F32, node)
        return self._loss(node, self._loss_weight(node, loss))

    def op_soft_margin_loss(self, node: Node) -> Node:
        """As PyTorch: log1p(exp(-y * x)), then the reduction."""
        x, y = self.arg(node, "self"), self.arg(node, "target")
        if x.shape != y.shape:
            raise Unsupported("aten.soft_margin_loss with broadcast operands", node.line)
        prod = self.new("mul", {"self": x, "other": y}, x.shape, F32, node)
        e = self.new("exp", {"self": self.new("neg", {"self": prod}, x.shape, F32, node)}, x.shape, F32, node)
        return self._loss(node, self.new("log1p", {"self": e}, x.shape, F32, node))

    def op_nll_loss_forward(self, node: Node) -> tuple[Node, Node | None]:
        logp, target = self.arg(node, "self"), self.arg(node, "target")
        if node.args.get("weight") is not None:
            raise Unsupported("aten.nll_loss_forward with class weights", node.line)
        if len(logp.shape) != 2 or target.shape != logp.shape[:1]:
            raise Unsupported("aten.nll_loss_forward of a tensor that is not [batch, classes]", node.line)
        ignore = node.args.get("ignore_index", -100)
        rows = target.shape
        picked = self.new("gather", {"self": logp, "index": target}, rows, F32, node)
        valid = self.new("ne", {"self": target, "other": ignore}, rows, "bool", node)
        neg = self.new("neg", {"self": picked}, rows, F32, node)
        loss = self.new("where", {"condition": valid, "self": neg, "other": 0.0}, rows, F32, node)
        reduction = node.args.get("reduction", 1)
        dtype = logp.dtype
        if reduction == 0:
            loss.dtype = dtype
            return (loss, None)
        total = self.red("sum", loss, None, False, node, dtype=F32)
        validf = self.new("cast", {"self": valid}, rows, F32, node)
        count = self.red("sum", validf, None, False, node, dtype=dtype)
        if reduction == 2:
            total.dtype = dtype
            return (total, count)
        return (self.new("div", {"self": total, "other": count}, (), dtype, node), count)

    # -- scans ----------------------------------------------------------------------------------
    def _scan(self, node: Node, spec: dict[str, Any]) -> Node:
        x = self.get(spec["x"])
        if not isinstance(x, Node) or node.dtype not in ops_float() or x.dtype not in ops_float():
            raise Unsupported(f"aten.cum{spec['kind']} of {getattr(x, 'dtype', 'a scalar')} into {node.dtype}",
                              node.line)
        args = {"self": x, **{k: v for k, v in spec.items() if k != "x"}}
        return self.new("cumsum", args, node.shape, node.dtype, node)

    def _scan_or(self, node: Node, fallback: Any) -> Any:
        spec = scan_patterns.scan_spec(node)
        if spec is not None:
            return self._scan(node, spec)
        return fallback(node)

    def _no_rule(self, node: Node) -> Any:
        raise Unsupported(f"aten.{node.op}.{node.name or 'default'} (outside the cumulative-scan patterns the rules "
                          "translate)", node.line)

    def op_cumsum(self, node: Node) -> Node:
        return self._scan_or(node, self._no_rule)

    def op_cumprod(self, node: Node) -> Node:
        return self._scan_or(node, self._no_rule)

    def op_flip(self, node: Node) -> Node:
        return self._scan_or(node, self._no_rule)

    def op_constant_pad_nd(self, node: Node) -> Node:
        return self._scan_or(node, self._no_rule)

    def op_slice(self, node: Node) -> Node:
        return self._scan_or(node, self._slice)

    def _ints(self, node: Node, *names: str) -> list[int | None]:
        values = [self.scalar(node, name) for name in names]
        if not all(v is None or type(v) is int for v in values):
            raise Unsupported(f"aten.{node.op} with bounds that are not integers", node.line)
        return values

    def _slice(self, node: Node) -> Node:
        """A slice with a step or an offset: a view the planner copies into a contiguous tensor
        (``copy`` region) for the kernels that read it; a slice that keeps everything is its input."""
        x = self.arg(node, "self")
        rank = len(x.shape)
        start, end, step = self._ints(node, "start", "end", "step")
        dim = node.args["dim"] % rank
        if x.shape == node.shape and step in (None, 1) and start in (None, 0):
            return x
        if step is not None and step < 1:
            raise Unsupported("aten.slice with a step below 1", node.line)
        return self.new("slice", {"self": x, "dim": dim, "start": start, "end": end, "step": step or 1},
                        node.shape, node.dtype, node)

    def op_select(self, node: Node) -> Node:
        """One index along a dim (``x[:, 2]``): a view the planner copies, as a slice."""
        x = self.arg(node, "self")
        (index,) = self._ints(node, "index")
        return self.new("select", {"self": x, "dim": node.args["dim"] % len(x.shape), "index": index},
                        node.shape, node.dtype, node)

    def op_unbind(self, node: Node) -> tuple[Callable[[], Node], ...]:
        """``x.unbind(dim)`` (q, k, v of one projection): a ``select`` view per index, each
        built when the forward reads it."""
        x = self.arg(node, "self")
        dim = node.args.get("dim", 0) % len(x.shape)
        shape = x.shape[:dim] + x.shape[dim + 1:]
        return tuple((lambda i=i: self.new("select", {"self": x, "dim": dim, "index": i}, shape, x.dtype, node))
                     for i in range(x.shape[dim]))

    def op_sub(self, node: Node) -> Node:
        return self._scan_or(node, self.pointwise)

    # -- GEMM and convolution (hybrid) --------------------------------------------------------
    def _external(self, node: Node, what: str) -> None:
        if self.policy != "hybrid":
            raise Unsupported(f"aten.{node.op} is a {what}; the task's strict policy does not let it "
                              "stay in PyTorch and the rules have no kernel for it", node.line)

    def _gemm_input(self, node: Node, name: str) -> tuple[Node, tuple[int, ...]]:
        """(A, result shape): ``nn.Linear`` on an N-D input is ATen's view to 2-D, a GEMM and a
        view back; the GEMM then keeps the N-D shape (the candidate reshapes around torch.mm)."""
        a = node.args[name]
        users = self.graph.users().get(node.id, [])
        if (a.op in ("view", "_unsafe_view", "reshape") and len(a.args["self"].shape) >= 3
                and a.shape == (a.args["self"].numel // a.args["self"].shape[-1], a.args["self"].shape[-1])
                and len(users) == 1 and users[0].op in ("view", "_unsafe_view", "reshape")
                and users[0].shape == a.args["self"].shape[:-1] + node.shape[-1:]):
            return self.get(a.args["self"]), users[0].shape
        return self.arg(node, name), node.shape

    def op_mm(self, node: Node) -> Node:
        diag = self._diag_product(node)
        if diag is not None:
            return diag
        if self._gemm_kernel(node):
            return self._gemm(node, node.args["self"], node.args["mat2"], "mm")
        self._external(node, "GEMM")
        a, shape = self._gemm_input(node, "self")
        return self.new("mm", {"self": a, "mat2": self.arg(node, "mat2")}, shape, node.dtype, node)

    def op_addmm(self, node: Node) -> Node:
        if node.args.get("beta", 1) != 1 or node.args.get("alpha", 1) != 1:
            self._external(node, "GEMM")
            raise Unsupported("aten.addmm with alpha or beta", node.line)
        if self._gemm_kernel(node):
            mm = self._gemm(node, node.args["mat1"], node.args["mat2"], "mm")
            return self.new("add", {"self": mm, "other": self.arg(node, "self")}, mm.shape, node.dtype, node)
        self._external(node, "GEMM")
        a, shape = self._gemm_input(node, "mat1")
        mm = self.new("mm", {"self": a, "mat2": self.arg(node, "mat2")}, shape, node.dtype, node)
        return self.new("add", {"self": mm, "other": self.arg(node, "self")}, shape, node.dtype, node)

    def op_bmm(self, node: Node) -> Node:
        return self._gemm(node, node.args["self"], node.args["mat2"], "bmm")

    def op_mv(self, node: Node) -> Node:
        return self._gemm(node, node.args["self"], node.args["vec"], "mv")

    def op_diag_embed(self, node: Node) -> Node:
        raise Unsupported("aten.diag_embed (torch.diag of a vector) other than as a factor of a matrix product",
                          node.line)

    def op_squeeze_(self, node: Node) -> Node:
        """In place: only where it folds into a GEMM's result (vector @ matrix squeezes it)."""
        raise Unsupported("aten.squeeze_ (in place) other than of a matrix product's result", node.line)

    def op_unsqueeze_(self, node: Node) -> Node:
        raise Unsupported("aten.unsqueeze_ (in place) other than of a matrix product's result", node.line)

    def op_triu(self, node: Node) -> Node:
        return self._triangle(node, "triu")

    def op_tril(self, node: Node) -> Node:
        return self._triangle(node, "tril")

    # -- GEMM kernels (strict policy; bmm and mv under any) -----------------------------------
    def _gemm_kernel(self, node: Node) -> bool:
        """Whether ``node`` (a traced GEMM op) becomes the rules' own GEMM kernel: always for
        bmm / mv (cuBLAS keeps only 2-D mm under the hybrid policy), for mm / addmm when the
        policy does not let them stay in PyTorch."""
        if node.op in ("bmm", "mv"):
            return True
        if node.op == "addmm" and (node.args.get("beta", 1) != 1 or node.args.get("alpha", 1) != 1):
            return False
        return node.op in ("mm", "addmm") and self.policy != "hybrid" and self._diag_factor(node) is None

    def _plan_gemm_folds(self) -> None:
        """For each GEMM kernel, the views of its result that become the shape C is allocated
        with (``gemm_layout``): the longest chain of single-use views whose every dim is a run
        of C's atoms. Not through attention patterns (lowered as attention), nor past a view
        the forward returns as well."""
        outputs = {n.id for n in self.graph.outputs}
        for node in self.graph.nodes:
            if node.op not in ("mm", "addmm", "bmm", "mv") or not self._gemm_kernel(node):
                continue
            if node.op == "addmm" and len(node.args["self"].shape) != 1:
                continue  # a bias of C's traced shape: the result keeps it
            try:
                _, _, groups, sizes, order = self._gemm_atoms(node)
            except Unsupported:
                continue  # refused with its reason when lowered
            chain, end = [node], None
            cur = node
            while cur.id not in outputs:
                users = self.users.get(cur.id, [])
                if len(users) != 1 or users[0].op not in gemm_layout.VIEWS | gemm_layout.PERMUTES | gemm_layout.SAME:
                    break
                cur = users[0]
                try:
                    groups = gemm_layout.step(cur, groups, sizes)
                except Unsupported:
                    break
                chain.append(cur)
                if all(g is not None and gemm_layout.ordered(g, order) for g in groups):
                    end = (cur, list(groups))
            if end is None or any(patterns.match_attention(n) or patterns_flash.match_flash(n) for n in chain):
                continue
            if node.op == "addmm" and end[1][-1] != tuple(a for a in order if a[0] == "b"):
                continue  # the bias adds along C's last dim: it must stay the column dim
            self.gemm_fold[node.id] = end
            self.fold_end[end[0].id] = node

    def _gemm_atoms(self, node: Node) -> tuple[tuple[Node, list], tuple[Node, list], list, dict, dict]:
        """((base A, groups [batch, m, k]), (base B, groups [batch, k, n]), C's dims as groups of
        atoms, atom sizes, atoms in C's memory order) of the traced GEMM ``node``."""
        kind = {"mm": "mm", "addmm": "mm", "bmm": "bmm", "mv": "mv"}[node.op]
        a_in, b_in = ((node.args["mat1"], node.args["mat2"]) if node.op == "addmm" else
                      (node.args["self"], node.args["vec" if node.op == "mv" else "mat2"]))
        base_a, ga = gemm_layout.operand(a_in)
        base_b, gb = gemm_layout.operand(b_in)
        if kind in ("mm", "mv"):
            ga = [()] + ga
        gb = [()] + gb + [()] if kind == "mv" else ([()] + gb if kind == "mm" else gb)
        if len(ga) != 3 or len(gb) != 3:
            raise Unsupported(f"aten.{node.op} of operands of rank {len(a_in.shape)} and {len(b_in.shape)}", node.line)
        for base, groups in ((base_a, ga), (base_b, gb)):
            sizes = dict(enumerate(base.shape))
            if not all(g is None or gemm_layout.mergeable(g, sizes) for g in groups):
                raise Unsupported(f"aten.{node.op} of a view whose dims cannot be read with one stride each "
                                  "(a permute inside a flattened dim)", node.line)
        if ga[1] is None or ga[2] is None or gb[1] is None or gb[2] is None:
            raise Unsupported(f"aten.{node.op} of an operand broadcast along its rows or columns", node.line)
        sizes = {("a", d): s for d, s in enumerate(base_a.shape)}
        sizes.update({("b", d): s for d, s in enumerate(base_b.shape)})
        batch = tuple(("a", d) for d in ga[0]) if ga[0] else tuple(("b", d) for d in gb[0] or ())
        m, n = tuple(("a", d) for d in ga[1]), tuple(("b", d) for d in gb[2])
        out = {"mm": [m, n], "bmm": [batch, m, n], "mv": [m]}[kind]
        order = {a: i for i, a in enumerate(batch + m + n)}
        return (base_a, ga), (base_b, gb), out, sizes, order

    def _gemm(self, node: Node, a_in: Node, b_in: Node, kind: str) -> Node:
        """A ``gemm`` node: C = A @ B per batch, A and B read in place (``gemm_layout``)."""
        if node.dtype not in ops_float() or a_in.dtype != node.dtype or b_in.dtype != node.dtype:
            raise Unsupported(f"aten.{node.op} of {a_in.dtype} and {b_in.dtype} into {node.dtype} (the rules' GEMM "
                              "multiplies float32, bfloat16 or float16 matrices of one dtype)", node.line)
        (base_a, ga), (base_b, gb), out, _, _ = self._gemm_atoms(node)
        shape = node.shape
        if node.id in self.gemm_fold:
            end, out = self.gemm_fold[node.id]
            shape = end.shape
        a, b = self.get(base_a), self.get(base_b)
        if not isinstance(a, Node) or not isinstance(b, Node):
            raise Unsupported(f"aten.{node.op} of a scalar", node.line)
        args = {"self": a, "mat2": b, "ga": tuple(ga), "gb": tuple(gb), "out": tuple(out), "tri": None}
        return self.new("gemm", args, shape, node.dtype, node)

    def _triangle(self, node: Node, kind: str) -> Node:
        """triu / tril of a GEMM's result (used only there): the GEMM's store zeroes the
        masked elements (and skips the tiles they cover)."""
        src = node.args["self"]
        x = self.get(src)
        if not isinstance(x, Node) or x.op != "gemm" or len(self.users.get(src.id, [])) != 1 or \
                any(o.id == src.id for o in self.graph.outputs) or x.args["tri"] is not None:
            raise Unsupported(f"aten.{kind} of anything but a matrix product used only there", node.line)
        out = x.args["out"]
        m, n = tuple(("a", d) for d in x.args["ga"][1]), tuple(("b", d) for d in x.args["gb"][2])
        if len(out) < 2 or out[-2] != m or out[-1] != n:
            raise Unsupported(f"aten.{kind} of a matrix product over dims other than its rows and columns",
                              node.line)
        diagonal = self.scalar(node, "diagonal") or 0
        if type(diagonal) is not int:
            raise Unsupported(f"aten.{kind} with a diagonal that is not an integer constant", node.line)
        x.args["tri"] = (kind, diagonal)
        return x

    def _diag_factor(self, node: Node) -> tuple[str, Node] | None:
        """("a" | "b", v) when one factor of the traced mm ``node`` is ``torch.diag(v)``."""
        if node.op != "mm":
            return None
        for side, name in (("a", "self"), ("b", "mat2")):
            d = node.args[name]
            if (d.op == "diag_embed" and (d.args.get("offset") or 0) == 0 and len(d.args["self"].shape) == 1
                    and (d.args.get("dim1"), d.args.get("dim2")) in ((-2, -1), (0, 1))):
                return side, d.args["self"]
        return None

    def _diag_product(self, node: Node) -> Node | None:
        """diag(v) @ B is v[:, None] * B and A @ diag(v) is A * v[None, :]: elementwise, one
        product per element (rounded once, as the GEMM would)."""
        found = self._diag_factor(node)
        if found is None:
            return None
        side, v = found
        other = self.arg(node, "mat2" if side == "a" else "self")
        vec = self.get(v)
        view = (vec.shape[0], 1) if side == "a" else (1, vec.shape[0])
        vv = self.new("view", {"self": vec}, view, vec.dtype, node)
        return self.new("mul", {"self": other, "other": vv}, node.shape, node.dtype, node)

    def op_convolution(self, node: Node) -> Node:
        if self.policy != "hybrid":
            return self._direct_conv(node)  # strict: the rules' own kernel (kern_conv)
        self._external(node, "convolution")
        x, w = self.arg(node, "input"), self.arg(node, "weight")
        if node.args.get("transposed") or len(x.shape) not in (3, 4, 5):
            raise Unsupported("a transposed convolution", node.line)
        module = None
        model = self.graph.model
        if w.op == "param" and model is not None:
            path = w.name.rpartition(".")[0]
            mod = model.get_submodule(path) if path else model
            if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and mod.padding_mode == "zeros":
                module = path
        args = {"input": x, "weight": w, "module": module}
        for key in ("stride", "padding", "dilation", "groups"):
            args[key] = node.args[key]
        conv = self.new("conv", args, node.shape, node.dtype, node)
        bias = self.arg(node, "bias")
        if bias is None:
            return conv
        shape = (1, bias.shape[0]) + (1,) * (len(node.shape) - 2)
        bview = self.new("view", {"self": bias}, shape, bias.dtype, node)
        return self.new("add", {"self": conv, "other": bview}, node.shape, node.dtype, node)

    def _direct_conv(self, node: Node) -> Node:
        """A ``dconv`` node: ``aten.convolution`` (1-3 spatial dims, transposed or not, grouped,
        bias included) as the rules' direct-convolution kernel. The window geometry (kernel
        size from the traced weight, stride, padding, dilation, output_padding, groups) is
        compiled in; batch, channels and spatial extents are read at run time."""
        pad_node, extra = _zero_pad_of(self.graph, node)
        if pad_node is None and node.args["input"].op == "constant_pad_nd":
            raise Unsupported("aten.constant_pad_nd before aten.convolution: the rules fold only a zero padding of "
                              "the spatial dims that nothing else reads into a (not transposed) convolution",
                              node.line)
        x = self.get(pad_node.args["self"]) if pad_node is not None else self.arg(node, "input")
        w, bias = self.arg(node, "weight"), self.arg(node, "bias")
        for name, value in (("input", x), ("weight", w), ("bias", bias)):
            if value is not None and (not isinstance(value, Node) or value.dtype != node.dtype
                                      or node.dtype not in ops_float()):
                raise Unsupported(f"aten.convolution with a {name} of {getattr(value, 'dtype', 'a scalar')} into "
                                  f"{node.dtype} (the rules convolve float32, bfloat16 and float16 tensors of "
                                  "one dtype)", node.line)
        nd, shape = len(x.shape) - 2, node.shape
        unbatched = (x.op == "view" and x.shape[:1] == (1,) and x.args["self"].shape == x.shape[1:]
                     and nd in (1, 2, 3))
        if unbatched:  # an unbatched input is a view with a batch of one: convolve the input itself
            x, shape = x.args["self"], node.shape[1:]
        if nd not in (1, 2, 3) or len(w.shape) != nd + 2:
            raise Unsupported(f"aten.convolution of a {len(x.shape)}-d input with a {len(w.shape)}-d weight "
                              "(the rules convolve batched [N, C, 1-3 spatial dims] inputs)", node.line)
        groups = node.args.get("groups", 1)
        if type(groups) is not int or groups < 1:
            raise Unsupported(f"aten.convolution with groups={groups!r}", node.line)
        window = {key: tuple(_pool_ints(node, key, nd, default)) for key, default in
                  (("stride", 1), ("padding", 0), ("dilation", 1), ("output_padding", 0))}
        if min(window["padding"] + window["output_padding"]) < 0:
            raise Unsupported(f"aten.convolution with negative padding {window}", node.line)
        # the zero padding before and after the input along each spatial dim (they differ where a
        # zero constant_pad_nd folded in: padding='same' with an even window)
        window["padding_end"] = tuple(p + e for p, (_, e) in zip(window["padding"], extra[-nd:]))
        window["padding"] = tuple(p + b for p, (b, _) in zip(window["padding"], extra[-nd:]))
        if bias is not None and bias.shape != (node.shape[1],):
            raise Unsupported(f"aten.convolution with a bias of shape {list(bias.shape)}", node.line)
        geometry = None
        model = self.graph.model
        if w.op == "param" and model is not None:  # checked at run time: hidden shapes rebuild the module
            mod = model.get_submodule(w.name.rpartition(".")[0]) if "." in w.name else model
            if all(hasattr(mod, a) for a in ("stride", "padding", "dilation", "groups", "output_padding")):
                geometry = (w.name.rpartition(".")[0],
                            repr((mod.stride, mod.padding, mod.dilation, mod.groups, mod.output_padding)))
        args = {"input": x, "weight": w, "bias": bias, "kernel": tuple(w.shape[2:]), "groups": groups,
                "transposed": bool(node.args.get("transposed")), "geometry": geometry, "unbatched": unbatched,
                **window}
        conv = self.new("dconv", args, shape, node.dtype, node)
        return conv if not unbatched else self.new("view", {"self": conv}, node.shape, node.dtype, node)

    # -- pooling ------------------------------------------------------------------------------
    def op_max_pool2d_with_indices(self, node: Node) -> tuple[Node, Callable[[], Node]]:
        return self._pool(node, "max", 2)

    def op_max_pool3d_with_indices(self, node: Node) -> tuple[Node, Callable[[], Node]]:
        return self._pool(node, "max", 3)

    def op_avg_pool2d(self, node: Node) -> Node:
        return self._pool(node, "avg", 2)[0]

    def op_avg_pool3d(self, node: Node) -> Node:
        return self._pool(node, "avg", 3)[0]

    def _pool(self, node: Node, kind: str, nd: int) -> tuple[Node, Callable[[], Node]]:
        """(values, indices maker): a ``pool`` node over the last ``nd`` dims of its
        input, with the window as compile-time constants and every size read at run time.
        Size-1 dims a trivial window slides over (``max_pool1d`` / ``avg_pool1d`` trace as the
        2-d op on ``x.unsqueeze(-2)``) are dropped, so the pool reads ``x`` itself. The int64
        indices (``return_indices=True``) are a ``pool_indices`` node the pool's kernel also
        writes, made only when the forward reads them."""
        x = self.arg(node, "self")
        if not isinstance(x, Node) or x.dtype not in ops_float():
            raise Unsupported(f"aten.{node.op} of {getattr(x, 'dtype', 'a scalar')} (the rules pool float32, "
                              "bfloat16 and float16 tensors)", node.line)
        if len(x.shape) not in (nd + 1, nd + 2):
            raise Unsupported(f"aten.{node.op} of a {len(x.shape)}-d tensor", node.line)
        window = {"kernel": _pool_ints(node, "kernel_size", nd, None),
                  "stride": _pool_ints(node, "stride", nd, "kernel_size"),
                  "padding": _pool_ints(node, "padding", nd, 0),
                  "dilation": _pool_ints(node, "dilation", nd, 1) if kind == "max" else [1] * nd}
        shape = node.shape if kind == "avg" else _values_shape(self.graph, node)
        x, window, out_shape = _squeezed(x, window, shape)
        divisor = node.args.get("divisor_override")
        if divisor is not None and (type(divisor) is not int or divisor == 0):
            raise Unsupported(f"aten.{node.op} with divisor_override={divisor!r}", node.line)
        args = {"self": x, "kind": kind, **{k: tuple(v) for k, v in window.items()},
                "ceil_mode": bool(node.args.get("ceil_mode", False)),
                "count_include_pad": bool(node.args.get("count_include_pad", True)), "divisor": divisor}
        pool = self.new("pool", args, out_shape, x.dtype, node)
        values = pool if out_shape == shape else self.new("view", {"self": pool}, shape, x.dtype, node)
        made: list[Node] = []

        def indices() -> Node:
            if not made:
                index = self.new("pool_indices", {"self": pool}, out_shape, "int64", node)
                made.append(index if out_shape == shape else self.new("view", {"self": index}, shape, "int64", node))
            return made[0]
        return values, indices


def _zero_pad_of(graph: Graph, conv: Node) -> tuple[Node | None, list[tuple[int, int]]]:
    """(the ``constant_pad_nd`` node, per spatial dim (before, after)) when a forward (not
    transposed) convolution's input is a zero padding of its spatial dims only, used by nothing
    else (``padding='same'`` with an even window traces so): the convolution pads instead."""
    nd = len(conv.shape) - 2
    raw = conv.args.get("input")
    if not isinstance(raw, Node) or raw.op != "constant_pad_nd" or conv.args.get("transposed") or nd < 1:
        return None, [(0, 0)] * nd
    pad, value = raw.args.get("pad") or [], raw.args.get("value", 0)
    users = graph.users().get(raw.id, [])
    if (value not in (0, 0.0, None) or len(pad) % 2 or len(pad) > 2 * nd or len(users) != 1
            or not all(type(v) is int and v >= 0 for v in pad)):
        return None, [(0, 0)] * nd
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]  # pad lists the last dim first
    return raw, [(0, 0)] * (nd - len(pairs)) + pairs


def _pool_ints(node: Node, name: str, nd: int, default: int | str | None) -> list[int]:
    """A pooling window argument as ``nd`` ints: one value repeats, an empty stride is the kernel size."""
    value = node.args.get(name)
    if value in (None, []) and isinstance(default, str):
        value = node.args.get(default)
    elif value in (None, []) and default is not None:
        value = default
    value = [value] * nd if type(value) is int else list(value or [])
    if len(value) == 1:
        value = value * nd
    if len(value) != nd or not all(type(v) is int for v in value):
        raise Unsupported(f"aten.{node.op} with {name}={node.args.get(name)!r} (expected {nd} integers)", node.line)
    if name in ("kernel_size", "stride", "dilation") and min(value) < 1:
        raise Unsupported(f"aten.{node.op} with {name}={value} (each must be at least 1)", node.line)
    return value


def _values_shape(graph: Graph, node: Node) -> tuple[int, ...]:
    """The shape of a ``max_pool*_with_indices`` node's values (its getitem 0)."""
    for user in graph.users().get(node.id, []):
        if user.op == "getitem" and user.index == 0:
            return user.shape
    raise Unsupported(f"aten.{node.op} whose values are not used", node.line)


def _squeezed(x: Node, window: dict[str, list[int]], shape: tuple[int, ...]
              ) -> tuple[Node, dict[str, list[int]], tuple[int, ...]]:
    """(input, window, output shape) with the size-1 spatial dims of a view dropped where the
    window over them is trivial (size 1, stride 1, no padding), when that leaves the view's input."""
    nd = len(window["kernel"])
    lead = len(x.shape) - nd
    keep = [k for k in range(nd) if not (x.shape[lead + k] == 1 and window["kernel"][k] == 1 and
                                         window["stride"][k] == 1 and window["padding"][k] == 0)]
    if x.op != "view" or len(keep) in (0, nd):
        return x, window, shape
    base = x.args["self"]
    squeezed = x.shape[:lead] + tuple(x.shape[lead + k] for k in keep)
    if base.shape != squeezed:
        return x, window, shape
    out = shape[:lead] + tuple(shape[lead + k] for k in keep)
    return base, {name: [v[k] for k in keep] for name, v in window.items()}, out


PERMUTES = ("t", "transpose", "permute")


def permutation(x: Node) -> tuple[list[int] | None, Node]:
    """(perm, base) with ``x`` = ``base`` read through transposes / permutes: ``x``'s dim d is
    ``base``'s dim perm[d]; (None, x) when ``x`` is no such view."""
    rank = len(x.shape)
    perm, cur = list(range(rank)), x
    while cur.op in PERMUTES and isinstance(cur.args.get("self"), Node):
        if cur.op == "t":
            local = [1, 0] if rank == 2 else list(range(rank))
        elif cur.op == "transpose":
            local = list(range(rank))
            a, b = cur.args["dim0"] % max(rank, 1), cur.args["dim1"] % max(rank, 1)
            local[a], local[b] = b, a
        else:
            local = [d % rank for d in cur.args["dims"]]
        perm = [local[d] for d in perm]
        cur = cur.args["self"]
    return (perm, cur) if cur is not x else (None, x)


def scaled(value: Any, k: float) -> Any:
    """``k * value`` for a literal or a runtime ``Scalar``."""
    if isinstance(value, Scalar):
        ref = value.ref
        transform = f"{k!r} * ({ref.transform})" if ref is not None else None
        return Scalar(value.value * k, dataclasses.replace(ref, transform=transform) if ref is not None else None)
    return value * k


def ops_float() -> tuple[str, ...]:
    return ("float32", "bfloat16", "float16")


_PATTERN_OPS = {"getitem", "_to_copy", "expand", "t", "transpose", "permute", "cat", "slice", "bmm", "select",
                "tril", "triu", "_safe_softmax", "bitwise_not"}  # the last four: attention masks
# Unused buffers (BatchNorm's reserve, RReLU's noise in eval mode): only an error where lowering reaches them
_UNUSED_OK = {"empty", "empty_like"}


def unknown_ops(graph: Graph) -> list[Node]:
    """Nodes whose op no rule (nor pattern) knows, in graph order."""
    handlers = {name[3:] for name in dir(Lowering) if name.startswith("op_")}
    known = ops.POINTWISE | _VIEW_OPS | _RED_OPS | _CONST_OPS | _PATTERN_OPS | _UNUSED_OK | handlers
    return [n for n in graph.nodes if not n.is_leaf and n.op not in known]


def lower(graph: Graph, policy: str) -> Graph:
    """Lower ``graph``; raises ``Unsupported`` naming the ops without a rule and their lines."""
    unknown = unknown_ops(graph)
    if unknown:
        names = ", ".join(f"aten.{n.op}.{n.name or 'default'}" + (f" at line {n.line}" if n.line else "")
                          for n in unknown[:4])
        more = f" (+{len(unknown) - 4} more)" if len(unknown) > 4 else ""
        raise Unsupported(f"no rule for {names}{more}")
    return Lowering(graph, policy).run()
