"""A kernel's lineage (``Archive.lineage`` rows) as a tree to draw as nested lists.

Lineage is a graph (a crossover has two parents): the tree starts at the oldest ancestors
and walks down through children; a kernel reached a second time is shown again, marked
``repeat`` and not expanded, so the tree stays finite and every edge is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    kernel_id: int
    operator: str | None
    proposer: str | None
    model: str | None
    best_speedup_eager: float | None
    parents: list[int]
    current: bool = False  # the kernel the page is about
    repeat: bool = False  # already drawn above
    children: list[Node] = field(default_factory=list)


def lineage_tree(rows: Sequence[Any], kernel_id: int) -> list[Node]:
    """Root nodes (kernels whose parents are not in ``rows``), each with its subtree."""
    by_id = {r.kernel_id: r for r in rows}
    children: dict[int, list[int]] = {k: [] for k in by_id}
    for r in rows:
        for p in r.parents:
            if p in children:
                children[p].append(r.kernel_id)
    drawn: set[int] = set()

    def build(k: int) -> Node:
        r = by_id[k]
        node = Node(k, r.operator, r.proposer, r.model, r.best_speedup_eager, list(r.parents), k == kernel_id)
        if k in drawn:
            node.repeat = True
            return node
        drawn.add(k)
        node.children = [build(c) for c in sorted(children[k])]
        return node

    roots = [k for k in sorted(by_id, key=lambda k: (by_id[k].generation, k)) if not any(p in by_id for p in by_id[k].parents)]
    return [build(k) for k in roots]
