"""Hand-written kernels shipped in ``kernels/seeds/``, proposed for the task each one names.

Some tasks are beyond the rules (grouped-query attention over a masked static cache); a
seed gives the search a verified starting point there without an LLM. A seed is an
ordinary candidate module whose ``# TASK: kernels/tasks/<path>`` line names its task; it is
evaluated like any other proposal (nothing about it is trusted) and its ``PARAMS`` are the
space optuna tunes. ``SeedsProposer`` offers them through the Proposer contract; the rules
proposer adds them to its own translations (``seeds_for``).
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from autotuner import pyast
from autotuner.resources import kernels_path
from evolution.proposers.base import Proposal, ProposalBatch, ProposalRequest

log = logging.getLogger(__name__)
_TASK_LINE = re.compile(r"^# TASK: (?:kernels/tasks/)?(?P<rel>\S+\.py)\s*$", re.MULTILINE)


def seed_dir() -> Path:
    return kernels_path("seeds")


def seed_model(name: str) -> type:
    """The ``ModelNew`` of seed ``name`` (``kernels/seeds/<name>.py``), from a fresh import, for
    binding a seed to a slot directly (tests, measuring scripts); the engine itself binds only
    kernels the evaluator verified."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"autotuner_seed_{name}", seed_dir() / f"{name}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no seed named {name!r} in {seed_dir()}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ModelNew


def seed_tasks(source: str) -> list[str]:
    """Every task path (relative to the suite) a seed names: one kernel may serve several
    tasks that differ only in shapes (the decode projections), one ``# TASK:`` line each."""
    return [m.group("rel") for m in _TASK_LINE.finditer(source)]


def seed_task(source: str) -> str | None:
    """The first task path a seed names, or None."""
    found = seed_tasks(source)
    return found[0] if found else None


def _literal_space(source: str, name: str) -> dict[str, list[Any]]:
    for node in pyast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = ast.literal_eval(node.value)
            return {str(k): list(v) for k, v in value.items()}
    return {}


def params_space(source: str) -> dict[str, list[Any]]:
    """The seed's literal ``PARAMS`` dict, read without importing it."""
    return _literal_space(source, "PARAMS")


def sweep_knobs(source: str) -> dict[str, list[Any]]:
    """The seed's literal ``SWEEP_KNOBS`` dict: constructor parameters that are deliberately not
    searched (their effect shows only where an engine chains the kernel, never in a kernel
    timed alone); scripts set them, the search leaves them at their defaults."""
    return _literal_space(source, "SWEEP_KNOBS")


def constructor_defaults(source: str, space: dict[str, list[Any]]) -> dict[str, Any]:
    """The setting the seed runs at when no parameter is passed: ``ModelNew.__init__``'s literal
    keyword defaults for the keys of ``space``, read without importing the seed. It is the
    tuner's start: the climb measures the settings one step from it. Without it a seed's start
    was ``{}``, outside the space, so the climb never began and its eight trials were TPE's
    random draws (H200, 2026-12-03: on gemv_gate_up_bf16 all eight ran 13-680% slower than the
    defaults, five with a shared-memory RING, which loses everywhere). {} when a default is
    missing, not a literal, or not among the space's choices: then no climb, as before."""
    if not space:
        return {}
    for node in pyast.parse(source).body:
        if not (isinstance(node, ast.ClassDef) and node.name == "ModelNew"):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                return _defaults_in_space(item.args, space)
    return {}


def _defaults_in_space(args: ast.arguments, space: dict[str, list[Any]]) -> dict[str, Any]:
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    found: dict[str, Any] = {}
    for arg, default in pairs:
        if arg.arg not in space:
            continue
        try:
            value = ast.literal_eval(default)
        except ValueError:
            return {}
        if value not in space[arg.arg]:
            return {}
        found[arg.arg] = value
    return found if set(found) == set(space) else {}


def seeds_for(task: Any, folder: Path | None = None) -> list[Proposal]:
    """Proposals for every seed naming ``task`` (matched by file name: ``decode/foo.py`` -> ``foo``)."""
    folder = folder or seed_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*.py")):
        source = path.read_text()
        if task.name not in {Path(rel).stem for rel in seed_tasks(source)}:
            continue
        try:
            space = params_space(source)
        except (SyntaxError, ValueError) as exc:
            log.warning("seed %s skipped: its PARAMS is not a literal dict (%s)", path, exc)
            continue
        found.append(Proposal(source=source, operator="translate", proposer="seed", params_space=space,
                              default_params=constructor_defaults(source, space),
                              variant=f"seed/{path.stem}", notes=f"hand-written seed {path.name}"))
    return found


class SeedsProposer:
    """Proposer contract (``evolution.proposers.base``) for the hand-written seeds: translate only.

    ``translate`` proposes every seed naming the request's task (``request.n`` does not cut
    them: they are few and the evaluator decides); a task without a seed, or another operator,
    gets an empty batch with a note. It only reads files, so it is safe to share between threads.
    """

    name = "seed"

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        if request.operator != "translate":
            return ProposalBatch(notes=[f"seeds only translate; operator {request.operator!r} needs another proposer"])
        seeds = seeds_for(request.task, self.folder)
        if not seeds:
            return ProposalBatch(notes=[f"no hand-written seed in kernels/seeds names task {request.task.name}"])
        return ProposalBatch(proposals=seeds)
