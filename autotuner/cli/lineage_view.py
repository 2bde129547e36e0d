"""A lineage tree as text: one kernel a line, children indented under their parent.

    #12 translate by rules  1.23x
    ├── #15 tune by rules  1.30x
    └── #20 optimize by llm:gpt-4o  1.52x  <- this kernel
        └── #25 crossover by llm:gpt-4o  -  (parents 20, 18)

A kernel with two parents (crossover) appears under each; the second time it is marked
``(shown above)`` and not expanded. Returns strings (the CLI prints them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from autotuner.speedup import format_speedup


def node_text(node: Any) -> str:
    made = f"{node.operator or '-'} by {node.proposer or '-'}"
    extra = []
    if len(node.parents) > 1:
        extra.append(f"(parents {', '.join(map(str, node.parents))})")
    if node.repeat:
        extra.append("(shown above)")
    if node.current:
        extra.append("<- this kernel")
    return "  ".join([f"#{node.kernel_id} {made}", format_speedup(node.best_speedup_eager), *extra])


def render_tree(roots: Sequence[Any]) -> str:
    """The forest under ``roots`` (``archive.LineageNode``), drawn with box characters."""
    lines: list[str] = []

    def walk(node: Any, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}{node_text(node)}")
        below = prefix if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(node.children):
            walk(child, below, i == len(node.children) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines) if lines else "(no kernels)"


def tree_json(roots: Sequence[Any]) -> list[dict[str, Any]]:
    """The forest as nested dicts (each node's ``children`` inside it)."""
    return [asdict(root) for root in roots]
