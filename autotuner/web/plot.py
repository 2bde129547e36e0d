"""The run page's progress plot as geometry for an inline SVG (no image, no script).

Per task, the best verified speedup over PyTorch eager against candidates evaluated (a step
line), torch.compile's speedup on that task (dashed, same colour: the line to cross) and
eager itself (1x, dotted). The template draws it; every label it carries is escaped there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 760, 340
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


@dataclass(frozen=True)
class Series:
    task: str
    color: str
    points: str  # SVG polyline points, "x,y x,y ..."
    compile_y: float | None  # torch.compile's speedup on the task, in pixels (None: unknown)
    best: float | None
    compile_speedup: float | None


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    left: int
    right: int  # x of the right edge of the axes
    top: int
    bottom: int  # y of the bottom edge of the axes
    eager_y: float
    series: list[Series] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    candidates: int = 0


def curves(points: Sequence[Any]) -> dict[str, list[tuple[int, float]]]:
    """Per task, (candidates evaluated so far, best accepted speedup so far) at each improvement
    and at the last candidate. ``points`` are ``RunPoint`` rows in recorded order; a stale
    result (an older harness) counts as a candidate but never as the best."""
    seen: dict[str, int] = {}
    best: dict[str, float] = {}
    out: dict[str, list[tuple[int, float]]] = {}
    for p in points:
        n = seen[p.task] = seen.get(p.task, 0) + 1
        s = p.speedup_eager
        if p.verdict == "accepted" and not p.stale and s is not None and math.isfinite(s) and s > best.get(p.task, 0.0):
            best[p.task] = s
            out.setdefault(p.task, []).append((n, s))
    for task, curve in out.items():
        if curve[-1][0] != seen[task]:
            curve.append((seen[task], curve[-1][1]))
    return out


def compile_speedups(points: Sequence[Any]) -> dict[str, float]:
    """torch.compile's speedup over eager per task, from the fastest accepted evaluation's baselines."""
    fastest: dict[str, Any] = {}
    for p in points:
        if p.verdict != "accepted" or p.stale or not p.eager_ms or not p.compiled_ms or p.speedup_eager is None:
            continue
        if p.task not in fastest or p.speedup_eager > fastest[p.task].speedup_eager:
            fastest[p.task] = p
    return {t: p.eager_ms / p.compiled_ms for t, p in fastest.items()}


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    raw = span / max(n, 1)
    step = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= n:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def progress_plot(points: Sequence[Any], max_series: int = len(COLORS)) -> Plot | None:
    """The plot of a run's ``points`` (None when nothing was accepted): at most ``max_series``
    tasks, those with the most candidates."""
    lines = curves(points)
    if not lines:
        return None
    compiled = compile_speedups(points)
    tasks = sorted(lines, key=lambda t: (-lines[t][-1][0], t))[:max_series]
    xmax = max(lines[t][-1][0] for t in tasks)
    values = [s for t in tasks for _, s in lines[t]] + [compiled[t] for t in tasks if t in compiled] + [1.0]
    ymin, ymax = min(values + [0.0]), max(values) * 1.1
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def x(n: float) -> float:
        return LEFT + (n - 1) / max(xmax - 1, 1) * (right - LEFT)

    def y(v: float) -> float:
        return bottom - (v - ymin) / (ymax - ymin) * (bottom - TOP)

    series = []
    for i, task in enumerate(tasks):
        pts, prev = [], None
        for n, s in lines[task]:
            if prev is not None:
                pts.append(f"{x(n):.1f},{y(prev):.1f}")  # a step: flat until the improvement
            pts.append(f"{x(n):.1f},{y(s):.1f}")
            prev = s
        c = compiled.get(task)
        series.append(Series(task, COLORS[i % len(COLORS)], " ".join(pts), y(c) if c else None, lines[task][-1][1], c))
    x_ticks = [(x(v), f"{v:g}") for v in _ticks(1, xmax) if v >= 1 and float(v).is_integer()]
    y_ticks = [(y(v), f"{v:g}x") for v in _ticks(ymin, ymax)]
    return Plot(WIDTH, HEIGHT, LEFT, right, TOP, bottom, y(1.0), series, x_ticks, y_ticks, len(points))
