"""Speedups: their geometric mean and how they are written (``1.23x``).

One home for both: the archive's leaderboard, the run report, the suite benchmark and the
CLI all summarise and print speedups the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def geomean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive values (None and non-positive ones are left out); None if none are left."""
    positive = [v for v in values if v is not None and v > 0]
    if not positive:
        return None
    return math.exp(sum(math.log(v) for v in positive) / len(positive))


def format_speedup(value: float | None) -> str:
    """``1.23x``, or ``-`` where there is no speedup."""
    return f"{value:.2f}x" if value is not None else "-"


def format_percent(fraction: float | None) -> str:
    """A fraction as a whole percentage (``0.456`` -> ``46%``), or ``-`` where there is none."""
    return f"{100 * fraction:.0f}%" if fraction is not None else "-"


__all__ = ["format_percent", "format_speedup", "geomean"]
