"""Plan fusion regions over a lowered graph, and map every value onto its region's index space.

Regions, formed in this order (each becomes one kernel, or one PyTorch call):

* ``copy``: a transpose, permute, strided slice or select (a chain of them) of an input or of
  another region's result, copied into a contiguous tensor for the kernels that read it (the
  GEMM reads its 2-D transposes itself; a reduction straight over a permute was already
  turned into one over the permute's input by ``lower``);
* ``gemm`` (a matrix product, batched or not, its operands read in place through their strides,
  a triu / tril of it fused into its store; the rules' own kernel), ``mm`` / ``conv`` (hybrid
  only: the GEMM or convolution, left to cuBLAS / cuDNN), ``scan``
  (cumsum over the last dim), ``attention`` (decode attention), ``flash`` (attention over
  query tiles), ``pool`` (max / avg pooling over 1-3 trailing dims of an input or of
  another region's result; max pooling's indices are written by the same kernel) and
  ``dconv`` (strict: a convolution, transposed or not, as the rules' direct-convolution
  kernel, bias included) - one node each;
* ``row``: every ``red`` over the same operand shape and trailing dims, with the pointwise
  prologue (cone of their operands) and epilogue (per-element and per-row values downstream)
  around them;
* ``col``: the same over a block of dims that is not trailing (the operand viewed as
  [outer, reduced, inner], inner > 1; ``Region.rdims`` are the reduced dims);
* ``reduce_all``: ``red_all`` nodes over the same shape, their prologue, and the scalar
  arithmetic on their results;
* ``pointwise``: whatever outputs remain, each with its pointwise cone; outputs of one shape
  share a kernel.

A value crossing regions is materialized (a tensor the candidate allocates). Pointwise
nodes are recomputed in every region that needs them rather than stored.

Each region has an index space ``shape`` (the traced shape of its anchor: a tensor read
without views, whose runtime shape gives the space's runtime sizes). ``maps`` gives, for
every value, which space dim each of its dims follows (or ``None`` for a size-1 /
broadcast dim); leaves are classified from their map (``Leaf.kind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evolution.proposers.rules import ops
from evolution.proposers.rules.ir import Graph, Node, Unsupported

_PASS = {"view", "expand", "id", "alias", "detach", "clone", "lift_fresh_copy", "contiguous"}
_SINGLE = {"mm", "conv", "cumsum", "attention", "flash", "pool", "dconv", "gemm"}
_SINGLE_KINDS = {"mm", "conv", "scan", "attention", "flash", "copy", "pool", "dconv", "gemm"}
# Views the kernels cannot read in their own memory order: a ``copy`` region materializes them.
STRIDED = {"t", "transpose", "permute", "slice", "select"}


@dataclass
class Leaf:
    """A tensor a region reads: ``node`` (input, param, const or another region's output)."""

    node: Node
    covers: tuple[int | None, ...]  # per dim of ``node``: the space dim it follows, or None
    kind: str  # full | col | row | scalar | general | gchan
    rotate: bool = False  # read through rotate_half (the other half of the last dim)


@dataclass
class Region:
    kind: str  # pointwise | row | col | reduce_all | scan | attention | flash | copy | pool | dconv | gemm | mm | conv
    nodes: list[Node] = field(default_factory=list)  # computed nodes, topological order
    outputs: list[Node] = field(default_factory=list)  # values this region materializes
    shape: tuple[int, ...] = ()
    anchor: Node | None = None
    k: int = 0  # row regions: trailing (reduced) dims
    maps: dict[int, tuple] = field(default_factory=dict)
    leaves: dict[int, Leaf] = field(default_factory=dict)  # by the id of the node as used
    inplace: dict[int, Node] = field(default_factory=dict)  # output id -> leaf whose buffer it reuses
    finals: list[int] = field(default_factory=list)  # reduce_all: nodes computed after the reduction
    index: int = 0
    rdims: tuple[int, ...] = ()  # col regions: the reduced dims (a contiguous block, not trailing)
    # The space's dims in memory order when it runs over a channels_last anchor (``shape`` is
    # then permuted too: dim i of the space is dim perm[i] of the anchor); () for the anchor's order.
    perm: tuple[int, ...] = ()

    @property
    def reduced(self) -> tuple[int, ...]:
        """Row and col regions: the space dims a reduction runs over."""
        if self.rdims:
            return self.rdims
        n = len(self.shape)
        return tuple(range(n - self.k, n))

    @property
    def span(self) -> tuple[int, int]:
        """Col regions: ``[a, b)``, the dims of the reduced block (outer dims before, inner after)."""
        dims = self.reduced
        return (min(dims), max(dims) + 1) if dims else (len(self.shape), len(self.shape))

    @property
    def reductions(self) -> list[Node]:
        return [n for n in self.nodes if n.op in ("red", "red_all")]

    def level(self, node: Node) -> str:
        """Row regions: "E" (varies along the row), "R" (one per row) or "S" (a scalar)."""
        dims = [d for d in self.maps.get(node.id, ()) if d is not None]
        reduced = self.reduced
        if any(d in reduced for d in dims):
            return "E"
        return "R" if dims else "S"


@dataclass
class Plan:
    graph: Graph
    regions: list[Region]
    producer: dict[int, Region]  # materialized node id -> region

    def describe(self) -> list[str]:
        return [f"{r.kind}[{', '.join(o.op for o in r.outputs)}]" for r in self.regions]


def base_leaf(node: Node) -> Node:
    while node.op in _PASS and isinstance(node.args.get("self"), Node):
        node = node.args["self"]
    return node


class Planner:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.users = graph.users()
        self.pos = {n.id: i for i, n in enumerate(graph.nodes)}
        self.outputs = {n.id for n in graph.outputs}
        self.producer: dict[int, Region] = {}  # materialized values
        self.regions: list[Region] = []

    def is_value(self, node: Node) -> bool:
        """A tensor that regions read as a leaf: a leaf node or another region's output."""
        return node.is_leaf or node.id in self.producer

    def cone(self, roots: list[Node], allowed: set[str], stop: set[int]) -> list[Node]:
        """Computed nodes reachable backwards from ``roots`` through ``allowed`` ops."""
        seen: dict[int, Node] = {}
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node.id in seen or self.is_value(node) or node.id in stop:
                continue
            if node.op not in allowed and not ops.is_pointwise(node):
                if node.op in ("t", "transpose", "permute"):
                    raise Unsupported(f"aten.{node.op} (a transpose) feeds a fused region; its kernels read every "
                                      "operand in its own memory order", node.line)
                raise Unsupported(f"{node.op} feeds a fused region but cannot be fused into it", node.line)
            seen[node.id] = node
            stack.extend(node.operands())
        return self.sort(seen.values())

    def sort(self, nodes: Any) -> list[Node]:
        return sorted({n.id: n for n in nodes}.values(), key=lambda n: self.pos[n.id])

    def materialize(self, region: Region, node: Node) -> None:
        if node.id not in self.producer:
            self.producer[node.id] = region
            region.outputs.append(node)

    def run(self) -> Plan:
        for node in self.graph.nodes:
            if node.op in _SINGLE:
                kind = {"mm": "mm", "conv": "conv", "cumsum": "scan", "attention": "attention", "flash": "flash",
                        "pool": "pool", "dconv": "dconv", "gemm": "gemm"}[node.op]
                region = Region(kind, nodes=[node], shape=node.shape)
                self.regions.append(region)
                self.materialize(region, node)
                for user in self.users.get(node.id, []):
                    if user.op == "pool_indices":  # max pooling's indices: written by the same kernel
                        region.nodes.append(user)
                        self.materialize(region, user)
        self.copy_regions()
        self.row_regions()
        self.reduce_all_regions()
        self.pointwise_regions()
        for region in self.regions:
            if region.kind == "copy":
                base = region.nodes[0].args["self"]
                if not self.is_value(base):
                    raise Unsupported(f"aten.{region.nodes[0].op} of {base.op}: the rules copy a transposed or "
                                      "strided view only of an input or of a value a kernel writes (reshape after "
                                      "the transpose, not before)", region.nodes[0].line)
            elif region.kind == "pool":
                base = region.nodes[0].args["self"]
                if not self.is_value(base):
                    raise Unsupported(f"pooling reads {base.op}: the rules pool an input or a value a kernel "
                                      "writes, in its own shape (pool before reshaping, not after)",
                                      region.nodes[0].line)
            elif region.kind == "dconv":
                for operand in region.nodes[0].operands():
                    if not self.is_value(operand):
                        raise Unsupported(f"the convolution reads {operand.op}: the rules convolve an input, a "
                                          "parameter or a value a kernel writes, batched [N, C, *spatial] in its own "
                                          "shape (a view of one, such as an unbatched input's, is not read)",
                                          region.nodes[0].line)
            elif region.kind in _SINGLE_KINDS:
                for operand in region.nodes[0].operands():
                    # a GEMM folds a transposed operand into its layout; flash reads every operand
                    # as written (a strided one through its copy region)
                    folds = operand.op in ("t", "transpose") and region.kind != "flash"
                    base = base_leaf(operand.args["self"] if folds else operand)
                    if not self.is_value(base):
                        raise Unsupported(f"{region.kind} reads {base.op}, which no region computes", base.line)
        ordered = self.order()
        for i, region in enumerate(ordered):
            region.index = i
        return Plan(self.graph, ordered, self.producer)

    # -- strided views ------------------------------------------------------------------------
    def copy_regions(self) -> None:
        """A ``copy`` region for every strided view a kernel reads or the forward returns (see the
        module docstring); a chain of views is one copy, of the chain's base."""
        for node in self.graph.nodes:
            if node.op not in STRIDED:
                continue
            users = self.users.get(node.id, [])
            gemm_only = node.op in ("t", "transpose") and all(u.op == "mm" for u in users)
            if node.id not in self.outputs and (gemm_only or all(u.op in STRIDED for u in users)):
                continue
            chain = [node]
            while chain[0].args["self"].op in STRIDED and chain[0].args["self"].id not in self.producer:
                chain.insert(0, chain[0].args["self"])
            region = Region("copy", nodes=chain, shape=node.shape)
            self.regions.append(region)
            self.materialize(region, node)

    # -- row regions --------------------------------------------------------------------------
    def row_regions(self) -> None:
        groups: dict[tuple, list[Node]] = {}
        for node in self.graph.nodes:
            if node.op == "red":
                shape = node.args["self"].shape
                groups.setdefault((shape, reduced_block(shape, node.args["dims"], node.line)), []).append(node)
        all_reds = {n.id for reds in groups.values() for n in reds}
        for (shape, (a, b)), reds in groups.items():
            if b == len(shape) or all(s == 1 for s in shape[b:]):
                region = Region("row", shape=shape, k=len(shape) - a)
            else:
                region = Region("col", shape=shape, rdims=tuple(range(a, b)))
            mine = {r.id for r in reds}
            means = [r.args["mean"] for r in reds if isinstance(r.args.get("mean"), Node)]
            roots = [r.args["self"] for r in reds] + means
            nodes = self.cone(roots, {"red", "gather", "rowview", "gchan"} | _PASS, set())
            foreign = [n for n in nodes if n.id in all_reds and n.id not in mine]
            if foreign:
                raise Unsupported("a reduction feeds a reduction of another shape", foreign[0].line)
            member = {n.id for n in nodes} | mine
            region.nodes = self.sort(nodes + reds)
            self.absorb(region, member)
            self.regions.append(region)

    def leaf_cone(self, node: Node) -> list[Node] | None:
        """``node``'s cone when it is pointwise arithmetic on leaves only, else None."""
        try:
            cone = self.cone([node], _PASS | {"gchan", "rowview", "rotate_half"}, set())
        except Unsupported:
            return None
        return cone

    def fits(self, region: Region, node: Node) -> bool:
        if node.op == "unrowview" or node.shape == region.shape:
            return True
        reduced = region.reduced
        rows = [s for d, s in enumerate(region.shape) if s != 1 and d not in reduced]
        along = [s for d, s in enumerate(region.shape) if s != 1 and d in reduced]  # a norm's weight view
        sizes = [s for s in node.shape if s != 1]
        return sizes == rows or node.numel == 1 or (region.kind == "col" and sizes == along)

    def absorb(self, region: Region, member: set[int]) -> None:
        """Pull downstream per-element / per-row values into a row region; mark its outputs."""
        changed = True
        while changed:
            changed = False
            for node in self.graph.nodes:
                if node.id in member or self.is_value(node):
                    continue
                fusable = ops.is_pointwise(node) or node.op in ("view", "expand", "gather", "unrowview")
                operands = node.operands()
                if not fusable or not self.fits(region, node) or not any(o.id in member for o in operands):
                    continue
                extra: list[Node] = []
                for o in operands:
                    if o.id in member or self.is_value(o):
                        continue
                    cone = self.leaf_cone(o)
                    if cone is None or not all(self.fits(region, c) for c in cone):
                        break
                    extra += cone
                else:
                    member.update(n.id for n in extra + [node])
                    region.nodes = self.sort(region.nodes + extra + [node])
                    changed = True
        keep = self.needed(region, member)
        region.nodes = [n for n in region.nodes if n.id in keep]
        self.mark_outputs(region, {n.id for n in region.nodes})

    def mark_outputs(self, region: Region, member: set[int]) -> None:
        for node in region.nodes:
            if node.id in self.outputs or any(u.id not in member for u in self.users.get(node.id, [])):
                self.materialize(region, node)

    def needed(self, region: Region, member: set[int]) -> set[int]:
        """Members that lead to a reduction, a graph output or a consumer outside the region."""
        keep: set[int] = set()
        for node in reversed(region.nodes):
            users = self.users.get(node.id, [])
            if (node.op in ("red", "red_all") or node.id in self.outputs
                    or any(u.id not in member or u.id in keep for u in users)):
                keep.add(node.id)
        return keep

    # -- whole-tensor reductions --------------------------------------------------------------
    def reduce_all_regions(self) -> None:
        groups: dict[tuple, list[Node]] = {}
        for node in self.graph.nodes:
            if node.op == "red_all" and node.id not in self.producer:
                groups.setdefault(node.args["self"].shape, []).append(node)
        for shape, reds in groups.items():
            region = Region("reduce_all", shape=shape)
            nodes = self.cone([r.args["self"] for r in reds], _PASS, set())
            member = {n.id for n in nodes} | {r.id for r in reds}
            finals: list[Node] = []
            for node in self.graph.nodes:  # scalar arithmetic on the results
                if node.id in member or self.is_value(node) or node.numel != 1 or not ops.is_pointwise(node):
                    continue
                operands = node.operands()
                if any(o.id in member for o in operands) and all(
                        o.id in member or (self.is_value(o) and o.numel == 1) for o in operands):
                    member.add(node.id)
                    finals.append(node)
            region.nodes = self.sort(nodes + reds + finals)
            region.finals = [n.id for n in reds + finals]
            self.mark_outputs(region, member)
            self.regions.append(region)

    # -- what is left: pointwise --------------------------------------------------------------
    def pointwise_regions(self) -> None:
        pending: list[Node] = []
        single_operands = set()
        for region in self.regions:
            if region.kind in _SINGLE_KINDS:
                single_operands.update(o.id for o in region.nodes[0].operands())
        for node in self.graph.nodes:
            views = _PASS | {"t", "transpose", "permute"}
            if self.is_value(node) or (node.op in views and node.id not in self.outputs):
                continue
            if node.id in self.outputs or node.id in single_operands:
                if node.op in _PASS:
                    raise Unsupported("an output that is a view of another value", node.line)
                pending.append(node)
        by_shape: dict[tuple, list[Node]] = {}
        for node in pending:
            by_shape.setdefault(node.shape, []).append(node)
        for shape, outs in by_shape.items():
            region = Region("pointwise", shape=shape)
            region.nodes = self.cone(outs, _PASS | {"rotate_half"}, set())
            for out in outs:
                self.materialize(region, out)
            self.regions.append(region)

    def order(self) -> list[Region]:
        """Regions in dependency order (a region runs after those whose outputs it reads)."""
        deps: dict[int, set[int]] = {}
        for i, region in enumerate(self.regions):
            deps[i] = set()
            for node in region.nodes:
                for operand in node.operands():
                    for cand in (operand, base_leaf(operand)):
                        src = self.producer.get(cand.id)
                        if src is not None and src is not region:
                            deps[i].add(self.regions.index(src))
        done: list[int] = []
        while len(done) < len(self.regions):
            ready = [i for i in deps if i not in done and deps[i] <= set(done)]
            if not ready:
                raise Unsupported("fusion regions depend on each other in a cycle")
            done.append(min(ready))
        return [self.regions[i] for i in done]


def make_plan(graph: Graph) -> Plan:
    """Regions of ``graph`` with index maps; raises ``Unsupported``."""
    plan = Planner(graph).run()
    for region in plan.regions:
        if region.kind in ("pointwise", "row", "col", "reduce_all"):
            map_region(region)
    return plan


# -- index maps ---------------------------------------------------------------------------------
class _Maps:
    """Unify every value's dims with the region's space dims (see the module docstring)."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.space = region.shape
        self.maps: dict[int, list] = {}

    def get(self, node: Node) -> list:
        if node.id not in self.maps:
            self.maps[node.id] = ["?" if s != 1 else None for s in node.shape]
        return self.maps[node.id]

    def unify(self, node: Node, i: int, value: Any) -> bool:
        m = self.get(node)
        if value is None or value == "?" or node.shape[i] == 1:
            return False
        if m[i] == "?":
            if self.space[value] != node.shape[i]:
                raise Unsupported(f"dim {i} of {node.op} (size {node.shape[i]}) meets a region dim of size "
                                  f"{self.space[value]}", node.line)
            m[i] = value
            return True
        if m[i] != value:
            raise Unsupported(f"{node.op}: one dim follows two different dims of the region", node.line)
        return False

    def same(self, a: Node, i: int, b: Node, j: int) -> bool:
        return self.unify(a, i, self.get(b)[j]) | self.unify(b, j, self.get(a)[i])

    def step(self, node: Node) -> bool:
        op = node.op
        changed = False
        if op == "red":
            x = node.args["self"]
            dims = node.args["dims"]
            kept = [i for i in range(len(x.shape)) if i not in dims]
            if node.args["keepdim"]:
                pairs = [(i, i) for i in kept]
            else:
                pairs = list(enumerate(kept))
            for i, j in pairs:
                changed |= self.same(node, i, x, j)
            mean = node.args.get("mean")
            if isinstance(mean, Node):
                for i in kept:
                    changed |= self.same(mean, i, x, i)
            return changed
        if op in ("red_all", "rowview", "gchan"):
            return False
        if op == "unrowview":
            return False
        if op == "gather":
            x, idx = node.args["self"], node.args["index"]
            for i in range(len(node.shape)):
                changed |= self.same(node, i, x, i)
                changed |= self.same(node, i, idx, i)
            return changed
        if op == "view":
            x = node.args["self"]
            a = [i for i, s in enumerate(x.shape) if s != 1]
            b = [i for i, s in enumerate(node.shape) if s != 1]
            if [x.shape[i] for i in a] != [node.shape[i] for i in b]:
                raise Unsupported("a view that splits or merges dims inside a fused region", node.line)
            for i, j in zip(b, a):
                changed |= self.same(node, i, x, j)
            return changed
        for operand in node.operands():  # broadcasting (expand is one-sided broadcasting too)
            off = len(node.shape) - len(operand.shape)
            for j, size in enumerate(operand.shape):
                if j + off >= 0 and size != 1 and size == node.shape[j + off]:
                    changed |= self.same(node, j + off, operand, j)
        return changed

    @staticmethod
    def values(node: Node) -> list[Node]:
        """``node`` and the operands whose dims live in the region's space."""
        if node.op in ("rowview", "gchan", "unrowview"):
            return [node] if node.op != "unrowview" else []
        return [node] + node.operands()

    def solve(self) -> dict[int, tuple]:
        nodes = self.region.nodes
        members = {n.id for n in nodes}
        identity = [i if s != 1 else None for i, s in enumerate(self.space)]
        for node in nodes:
            for value in self.values(node):
                # a reduction of this region is placed by its operand; another region's output
                # (read here like an input) of the region's shape is the space itself
                if value.shape == self.space and (value.op not in ("red", "red_all") or value.id not in members):
                    for i in range(len(value.shape)):
                        self.unify(value, i, identity[i])
        for _ in range(4 * len(nodes) + 4):
            changed = False
            for node in nodes:
                changed |= self.step(node)
            if not changed:
                break
        for node in nodes:  # last resort: right-align what is still unknown
            for value in self.values(node):
                m = self.get(value)
                off = len(self.space) - len(value.shape)
                for i, v in enumerate(m):
                    if v == "?":
                        if off + i < 0 or self.space[off + i] != value.shape[i]:
                            raise Unsupported(f"cannot place {value.op}{list(value.shape)} in the region's "
                                              f"space {list(self.space)}", value.line)
                        m[i] = off + i
        for node in nodes:
            if node.op == "unrowview":
                self.maps[node.id] = list(self.get(node.args["self"]))
        return {k: tuple(v) for k, v in self.maps.items()}


def map_region(region: Region) -> None:
    region.maps = _Maps(region).solve()
    members = {n.id for n in region.nodes}
    anchor = None
    for node in region.nodes:
        for operand in node.operands():
            if operand.id in members or operand.id in region.leaves:
                continue
            leaf = classify(region, operand, node)
            region.leaves[operand.id] = leaf
            if anchor is None and leaf.kind == "full" and operand.shape == region.shape:
                anchor = operand
    rowview = next((n for n in region.nodes if n.op == "rowview"), None)
    if rowview is not None:
        anchor = rowview.args["self"]
    for node in region.nodes:
        if node.op == "rotate_half":
            leaf = region.leaves.get(node.args["self"].id)
            if leaf is None or leaf.kind != "full":
                raise Unsupported("rotate_half of a value that is not a whole input tensor", node.line)
            leaf.rotate = True
    if anchor is None:
        raise Unsupported(f"no tensor of the region's shape {list(region.shape)} is read without a view "
                          "(the rules size every kernel from one)")
    region.anchor = anchor
    _check_outputs(region)


def reduced_block(shape: tuple[int, ...], dims: list[int], line: int | None = None) -> tuple[int, int]:
    """``[a, b)``: the block of dims a reduction over ``dims`` of ``shape`` covers, size-1 dims
    ignored (reducing one changes nothing); raises ``Unsupported`` when a kept dim of size > 1
    lies between two reduced ones (the operand is not [outer, reduced, inner])."""
    real = [d for d in dims if shape[d] != 1] or list(dims)
    a, b = min(real), max(real) + 1
    between = [d for d in range(a, b) if d not in real and shape[d] != 1]
    if between:
        raise Unsupported(f"a reduction over dims {sorted(dims)} of a {list(shape)} tensor: kept dim(s) "
                          f"{between} lie between reduced ones (the rules reduce one contiguous block of dims, "
                          "[outer, reduced, inner]; reduce in two steps, or permute first)", line)
    return a, b


def reduced_blocks(shape: tuple[int, ...], dims: list[int]) -> list[list[int]]:
    """The reduced dims as blocks of adjacent dims (size-1 dims between them count as adjacent),
    innermost block first; one block when ``reduced_block`` accepts ``dims``. Reduced size-1
    dims go with the outermost block (reducing one changes nothing but the shape)."""
    real = sorted(d for d in dims if shape[d] != 1)
    if not real:
        return [sorted(dims)]
    blocks = [[real[0]]]
    for d in real[1:]:
        if any(shape[k] != 1 for k in range(blocks[-1][-1] + 1, d) if k not in dims):
            blocks.append([d])
        else:
            blocks[-1].append(d)
    blocks.reverse()
    blocks[-1] = sorted(blocks[-1] + [d for d in dims if shape[d] == 1])
    return blocks


def classify(region: Region, leaf: Node, user: Node) -> Leaf:
    """How ``region`` reads ``leaf`` (an input, param, const or another region's output)."""
    if leaf.op == "const":
        return Leaf(leaf, tuple(None for _ in leaf.shape), "scalar")
    if user.op == "gchan":
        return Leaf(leaf, (None,) * len(leaf.shape), "gchan")
    if user.op == "rowview":
        return Leaf(leaf, (None,) * len(leaf.shape), "full")
    covers = tuple(region.maps.get(leaf.id, (None,) * len(leaf.shape)))
    dims = [d for d in covers if d is not None]
    reduced = region.reduced
    space = [i for i, s in enumerate(region.shape) if s != 1]
    if dims != sorted(dims):
        raise Unsupported(f"{leaf.op} {leaf.name} is read transposed", user.line)
    if not dims:
        kind = "scalar"
    elif dims == space:
        kind = "full"
    elif region.kind in ("row", "col") and dims == [d for d in space if d in reduced]:
        kind = "col"  # varies along the reduced dims only (a norm's weight): indexed by the element
    elif region.kind in ("row", "col") and dims == [d for d in space if d not in reduced]:
        kind = "row"  # one value per reduced row / column: indexed by the row
    elif region.kind == "pointwise":
        kind = "general"
    else:
        raise Unsupported(f"{leaf.op} {leaf.name or ''}{list(leaf.shape)} broadcasts in a way the "
                          f"{region.kind} kernels do not read", user.line)
    return Leaf(leaf, covers, kind)


def _check_outputs(region: Region) -> None:
    space = [i for i, s in enumerate(region.shape) if s != 1]
    for out in region.outputs:
        dims = [d for d in region.maps.get(out.id, ()) if d is not None]
        if dims != sorted(dims):
            raise Unsupported("an output whose dims are transposed relative to its inputs", out.line)
        reducing = region.kind in ("row", "col")
        if reducing and region.level(out) == "E" and dims != space:
            raise Unsupported("a per-element output that does not cover the whole row space", out.line)
        rows = [d for d in space if d not in region.reduced]
        if reducing and region.level(out) == "R" and dims != rows:
            raise Unsupported("a per-row output that does not cover every row", out.line)
        if region.kind == "pointwise" and dims != space:
            raise Unsupported("an output that broadcasts", out.line)
