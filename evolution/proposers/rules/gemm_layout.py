"""How a GEMM's operands and result lie in memory, as groups of a contiguous tensor's dims.

``torch.matmul`` and ``einsum`` reach ATen as ``mm`` / ``bmm`` between views of the real
tensors (``A.T``, a 3-D input flattened to 2-D, unsqueezes and permutes around a batch dim),
and the result is viewed back. The GEMM kernel reads each operand in place through three
strides (batch, rows, cols), so every such view is folded into a *layout*: for each dim of
the operand, the dims of its base tensor it covers (a *group*). A contiguous base's group of
consecutive dims (in order) is one dim of stride ``base.stride(last)`` and size the product
of the base's sizes, both read at run time; ``()`` is a dim of size 1 and ``None`` a
broadcast (``expand``) dim, both of stride 0. Views whose dims cannot be addressed so (a
permute inside a merged group, a split of one base dim) are refused.

The result gets the same treatment forward: its dims are groups of *atoms* (the batch, row
and column dims of the operands' bases, in C's memory order), so a chain of views after the
GEMM (``_unsafe_view`` back to N-D, einsum's unsqueeze / permute / squeeze) becomes the
shape C is allocated with, and no view of the result is left for other regions.
"""

from __future__ import annotations

from typing import Any, Sequence

from evolution.proposers.rules.ir import Node, Unsupported

Group = tuple[Any, ...] | None  # the atoms a dim covers; () size 1; None broadcast
VIEWS = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "flatten", "unflatten", "view_as",
         "_reshape_alias", "squeeze_", "unsqueeze_"}
PERMUTES = {"t", "transpose", "permute"}
SAME = {"alias", "detach", "contiguous", "lift_fresh_copy", "clone"}


def _perm(node: Node, rank: int) -> list[int]:
    """Dim d of ``node`` is dim perm[d] of its input."""
    if node.op == "t":
        return [1, 0] if rank == 2 else list(range(rank))
    if node.op == "transpose":
        perm = list(range(rank))
        a, b = node.args["dim0"] % rank, node.args["dim1"] % rank
        perm[a], perm[b] = b, a
        return perm
    return [d % rank for d in node.args["dims"]]


def reshape(groups: list[Group], sizes: dict[Any, int], shape: Sequence[int], line: int | None) -> list[Group]:
    """Groups of a view to ``shape`` of dims with ``groups`` (atom sizes ``sizes`` as traced):
    the atoms in order, dealt to the new dims by size. A new dim of size 1 takes a size-1
    atom when one comes next (else none); a broadcast dim must stay one dim of its own."""
    atoms: list[Any] = []
    for g in groups:
        if g is None:
            atoms.append(None)
        else:
            atoms.extend(g)
    out: list[Group] = []
    i = 0
    for size in shape:
        if i < len(atoms) and atoms[i] is None:
            out.append(None)
            i += 1
            continue
        group: list[Any] = []
        prod = 1
        while prod < size and i < len(atoms):
            if atoms[i] is None:
                raise Unsupported("a GEMM operand or result whose broadcast dim is merged with another", line)
            group.append(atoms[i])
            prod *= sizes[atoms[i]]
            i += 1
        if prod != size:
            raise Unsupported("a view that splits one dim of a GEMM operand or result (the GEMM reads each "
                              "as groups of whole dims)", line)
        if size == 1 and not group and i < len(atoms) and atoms[i] is not None and sizes[atoms[i]] == 1:
            group.append(atoms[i])
            i += 1
        out.append(tuple(group))
    rest = atoms[i:]
    if any(a is None or sizes[a] != 1 for a in rest):
        raise Unsupported("a view of a GEMM operand or result that drops dims", line)
    if rest:
        last = next((k for k in range(len(out) - 1, -1, -1) if out[k] is not None), None)
        if last is None:
            raise Unsupported("a view of a GEMM operand or result that drops dims", line)
        out[last] = tuple(out[last]) + tuple(rest)
    return out


def step(node: Node, groups: list[Group], sizes: dict[Any, int]) -> list[Group]:
    """``groups`` after the view op ``node`` (applied to the value they describe)."""
    if node.op in VIEWS:
        return reshape(groups, sizes, node.shape, node.line)
    if node.op in PERMUTES:
        return [groups[p] for p in _perm(node, len(groups))]
    if node.op in SAME:
        return list(groups)
    if node.op == "expand":
        src = node.args["self"].shape
        off = len(node.shape) - len(src)
        out: list[Group] = [None] * off
        for d, g in enumerate(groups):
            grows = src[d] != node.shape[off + d]
            if grows and g is not None and any(sizes[a] != 1 for a in g):
                raise Unsupported("aten.expand of a GEMM operand dim larger than 1", node.line)
            out.append(None if grows else g)
        return out
    raise Unsupported(f"aten.{node.op} between a tensor and a GEMM", node.line)


def operand(node: Node) -> tuple[Node, list[Group]]:
    """(base, groups): ``node`` (a traced GEMM operand) as the last non-view value it views,
    with each dim's group of that base's dims (atoms are the base's dim indices)."""
    chain: list[Node] = []
    base = node
    while base.op in VIEWS | PERMUTES | SAME | {"expand"} and isinstance(base.args.get("self"), Node):
        chain.append(base)
        base = base.args["self"]
    sizes = dict(enumerate(base.shape))
    groups: list[Group] = [(d,) for d in range(len(base.shape))]
    for view in reversed(chain):
        groups = step(view, groups, sizes)
    return base, groups


def mergeable(group: Group, sizes: dict[Any, int]) -> bool:
    """One stride covers ``group``: its atoms are consecutive dims of the base in order (size-1
    dims may sit between them)."""
    if not group:
        return True
    for a, b in zip(group, group[1:]):
        if b <= a or any(sizes[d] != 1 for d in range(a + 1, b)):
            return False
    return True


def ordered(group: Group, order: dict[Any, int]) -> bool:
    """The result's dim covers consecutive atoms of C, in C's memory order."""
    if not group:
        return True
    pos = [order[a] for a in group]
    return pos == list(range(pos[0], pos[0] + len(pos)))
