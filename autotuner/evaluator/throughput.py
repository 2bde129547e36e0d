"""How many candidates an hour one GPU can judge: the evaluator's own speed, measured.

Three figures: a candidate evaluated alone in its own child (with baselines cached, the
usual case in a run), several parameter settings of one candidate sharing a child (how
optuna tuning runs), and the same through a fresh interpreter instead of the fork server.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from autotuner import pyast
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import evaluate, evaluate_many


# Where a child's time goes, in the order it is spent (``EvalResult.phases_s``). A name
# ``phase.part`` (and ``guard_bytes``, inside ``verify``) is a part of ``phase``, already in it.
PHASE_ORDER = ("child_start", "cuda_init", "sandbox", "setup", "baselines", "import", "verify",
               "time_and_check", "unwatched_check", "finish", "sanitizer")
_PART_OF = {"guard_bytes": "verify"}
REST = "rest of wall"  # parent's checks, its polling, the child's exit: wall minus the phases


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    median_s: float
    share: float  # of the median wall time
    part_of: str | None = None  # the phase this one is a part of (already counted there)


def part_of(name: str) -> str | None:
    """The phase ``name`` is a part of, or None for a phase of its own."""
    return _PART_OF.get(name) or (name.split(".", 1)[0] if "." in name else None)


def _order(names: set[str]) -> list[str]:
    own = {n for n in names if part_of(n) is None}
    tops = [n for n in PHASE_ORDER if n in own] + sorted(own - set(PHASE_ORDER))
    ordered = []
    for top in tops:
        ordered.append(top)
        ordered += sorted(n for n in names if part_of(n) == top)
    return ordered + sorted(n for n in names if part_of(n) and part_of(n) not in tops)


def phase_breakdown(phases: list[dict[str, float]], walls: list[float]) -> list[PhaseRow]:
    """Median seconds of every phase across candidates (a phase a candidate lacks counts 0),
    each phase followed by its parts, then the rest of the wall time nothing accounts for.

    Medians of parts do not add up to a median whole; the shares say where to look first.
    """
    if not phases or not walls:
        return []
    wall = statistics.median(walls)
    names = {n for p in phases for n in p}
    rows = []
    for name in _order(names):
        median = statistics.median(p.get(name, 0.0) for p in phases)
        rows.append(PhaseRow(name, median, median / wall if wall > 0 else 0.0, part_of(name)))
    rest = statistics.median(w - sum(v for n, v in p.items() if part_of(n) is None) for p, w in zip(phases, walls))
    rows.append(PhaseRow(REST, rest, rest / wall if wall > 0 else 0.0))
    return rows


@dataclass
class Throughput:
    single_wall_s: list[float]
    batch_wall_s: float
    batch_settings: int
    fresh_interpreter_wall_s: float
    verdicts: list[str]
    single_phases_s: list[dict[str, float]] = field(default_factory=list)  # each single's phases_s
    # distinct settings from the candidate's PARAMS, never compiled before, sharing a child: one
    # batch compiled one by one as each is built, another (other settings) compiled ahead
    distinct_settings: int = 0
    distinct_one_by_one_s: float | None = None
    distinct_ahead_s: float | None = None

    @property
    def breakdown(self) -> list[PhaseRow]:
        """Per-phase medians over the single-candidate runs (one child each, so nothing shared)."""
        return phase_breakdown(self.single_phases_s, self.single_wall_s)

    @property
    def single_p50_s(self) -> float:
        return statistics.median(self.single_wall_s)

    @property
    def per_hour_single(self) -> float:
        return 3600 / self.single_p50_s

    @property
    def per_hour_batched(self) -> float:
        return 3600 * self.batch_settings / self.batch_wall_s


def measure_throughput(task: Path, candidate: Path, repeats: int = 5, settings: list[dict] | None = None,
                       config: EvalConfig | None = None, distinct: int = 8) -> Throughput:
    config = config or EvalConfig()
    evaluate(task, candidate, config)  # fills the peak and baseline caches, as after a run's first candidate
    singles, verdicts, phases = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = evaluate(task, candidate, config)
        singles.append(time.perf_counter() - started)
        verdicts.append(result.verdict.value)
        phases.append(dict(result.phases_s))
    settings = settings or [{}] * 8
    started = time.perf_counter()
    batch = evaluate_many(task, candidate, settings, config)
    batch_wall = time.perf_counter() - started
    verdicts += [r.verdict.value for r in batch]
    started = time.perf_counter()
    verdicts.append(evaluate(task, candidate, replace(config, fork_server=False)).verdict.value)
    fresh = time.perf_counter() - started
    out = Throughput(singles, batch_wall, len(settings), fresh, verdicts, phases)
    one_by_one, ahead = distinct_settings(candidate.read_text(), 2 * distinct)
    if distinct and len(ahead) == distinct:
        out.distinct_settings = distinct
        for batch_settings, on in ((one_by_one, False), (ahead, True)):
            started = time.perf_counter()
            results = evaluate_many(task, candidate, batch_settings, replace(config, compile_ahead=on))
            wall = time.perf_counter() - started
            verdicts += [r.verdict.value for r in results]
            if on:
                out.distinct_ahead_s = wall
            else:
                out.distinct_one_by_one_s = wall
    return out


def distinct_settings(candidate_text: str, n: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Two disjoint lists of about ``n / 2`` settings each from the candidate's literal ``PARAMS``
    space (none if it declares none), so that neither batch finds the other's compiles cached."""
    import ast
    import itertools
    import random

    try:
        tree = pyast.parse(candidate_text)
        space = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                     and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "PARAMS")
    except (SyntaxError, StopIteration, ValueError, TypeError):
        return [], []
    if not isinstance(space, dict) or not space or not all(isinstance(v, list) and v for v in space.values()):
        return [], []
    names = list(space)
    grid = [dict(zip(names, combo)) for combo in itertools.islice(itertools.product(*space.values()), 10_000)]
    random.Random(seed).shuffle(grid)
    half = min(n // 2, len(grid) // 2)
    return grid[:half], grid[half:2 * half]
