"""Lineage as a whole: every kernel of a task with its parents, and lineage rows as a tree.

``queries.lineage`` walks out from one kernel; ``task_lineage`` returns a task's whole
family (every kernel, its parents in order, its best speedup) in three queries whatever the
number of kernels, for ``autotuner archive lineage --task``. ``lineage_tree`` turns either
set of rows into a tree for the CLI and the browser to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive.models import Evaluation, Kernel, KernelParent
from archive.queries import current_harness, resolve_tasks
from archive.rows import LineageRow


def task_lineage(session: Session, task: str) -> list[LineageRow]:
    """Every kernel of ``task`` (an id, a name: every version, or a hash prefix), oldest first.

    ``generation`` counts from the task's roots (kernels made from nothing: 0); a kernel is
    one generation after its latest parent.
    """
    task_ids = resolve_tasks(session, task)
    kernels = list(session.execute(
        select(Kernel.id, Kernel.operator, Kernel.proposer, Kernel.model)
        .where(Kernel.task_id.in_(task_ids)).order_by(Kernel.id)))  # fmt: skip
    parents: dict[int, list[int]] = {k.id: [] for k in kernels}
    edges = (select(KernelParent.kernel_id, KernelParent.parent_id)
             .join(Kernel, Kernel.id == KernelParent.kernel_id)
             .where(Kernel.task_id.in_(task_ids))
             .order_by(KernelParent.kernel_id, KernelParent.position))  # fmt: skip
    for kid, pid in session.execute(edges):
        parents[kid].append(pid)
    speedups = dict(session.execute(
        select(Evaluation.kernel_id, func.max(Evaluation.speedup_eager))
        .where(Evaluation.task_id.in_(task_ids), Evaluation.verdict == "accepted",
               Evaluation.harness_version == current_harness())
        .group_by(Evaluation.kernel_id)).all())  # fmt: skip
    generation: dict[int, int] = {}
    for k in kernels:  # ids grow with time and a parent exists before its child: one pass
        known = [generation[p] for p in parents[k.id] if p in generation]
        generation[k.id] = max(known) + 1 if known else 0
    return [LineageRow(kernel_id=k.id, generation=generation[k.id], parents=parents[k.id], operator=k.operator,
                       proposer=k.proposer, model=k.model, best_speedup_eager=speedups.get(k.id))
            for k in kernels]  # fmt: skip


@dataclass
class LineageNode:
    kernel_id: int
    operator: str | None
    proposer: str | None
    model: str | None
    best_speedup_eager: float | None
    parents: list[int]
    current: bool = False  # the kernel asked about
    repeat: bool = False  # already drawn above (a second parent's branch)
    children: list[LineageNode] = field(default_factory=list)


def lineage_tree(rows: Sequence[Any], kernel_id: int | None = None) -> list[LineageNode]:
    """Root nodes (kernels whose parents are not in ``rows``), each with its subtree.

    Lineage is a graph (a crossover has two parents): the tree starts at the oldest
    ancestors and walks down through children; a kernel reached a second time is shown
    again, marked ``repeat`` and not expanded, so the tree stays finite and every edge is
    visible. ``kernel_id`` marks the kernel asked about as ``current``.
    """
    by_id = {r.kernel_id: r for r in rows}
    children: dict[int, list[int]] = {k: [] for k in by_id}
    for r in rows:
        for p in r.parents:
            if p in children:
                children[p].append(r.kernel_id)
    drawn: set[int] = set()

    def build(k: int) -> LineageNode:
        r = by_id[k]
        node = LineageNode(k, r.operator, r.proposer, r.model, r.best_speedup_eager, list(r.parents), k == kernel_id)
        if k in drawn:
            node.repeat = True
            return node
        drawn.add(k)
        node.children = [build(c) for c in sorted(children[k])]
        return node

    roots = [k for k in sorted(by_id, key=lambda k: (by_id[k].generation, k))
             if not any(p in by_id for p in by_id[k].parents)]  # fmt: skip
    return [build(k) for k in roots]
