"""The candidate: its format's reading (kernels, tunables), its loading, and its one source hash.

A candidate is a Python module defining ``ModelNew`` (README, "Candidate format"). Everything
that needs to know what a candidate declares, or which candidate a result belongs to, asks
this module: the evaluator, the search, the archive and deploy all hash a source with
``source_hash``, so a resumed run recognises what it already evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from autotuner import pyast
from autotuner.runtime.signature import parse_kernels

_counter = itertools.count()


def source_hash(source: str) -> str:
    """SHA-256 of the source's UTF-8 text, hex: a candidate's identity everywhere (archive rows too)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def cuda_sources(source: str) -> list[str]:
    """String constants in the candidate that hold CUDA kernels (``__global__``)."""
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "__global__" in node.value:
            found.append(node.value)
    return found


def dotted_name(node: ast.AST) -> str | None:
    """``torch.cuda.Stream`` for an Attribute chain rooted at a Name, else None (also for the
    static check, which reads names the same way)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _decorator_name(node: ast.AST) -> str:
    return dotted_name(node.func if isinstance(node, ast.Call) else node) or ""


def triton_kernel_names(source: str) -> set[str]:
    """Functions decorated with ``triton.jit`` (the profiler lists a Triton kernel by its name)."""
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return set()
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any(_decorator_name(d).split(".")[-1] == "jit" for d in node.decorator_list)}


def declared_kernel_names(source: str) -> set[str]:
    """Names of every ``__global__`` function in the candidate's CUDA strings, and its Triton kernels."""
    names: set[str] = set()
    for cuda in cuda_sources(source):
        names.update(parse_kernels(cuda))
    return names | triton_kernel_names(source)


def ahead_plan(source: str, settings: list[dict[str, Any]]) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """(CUDA source, defines) of each distinct setting, and the target they compile for, of a
    candidate that declares them (one parse of its text).

    A candidate may say what its kernels compile with, as literals the harness reads without
    running it: ``COMPILE_AHEAD = {"source": "SOURCE", "defines": {"BLOCK": 256, ...}}`` names a
    module-level string constant and the defaults that a setting overrides (the rule proposer
    writes it; its ``compile_module(SOURCE, defines=...)`` gets exactly these); an ``"arch"``
    entry (``"sm_90a"``) is ``compile_module``'s arch-specific target. Anything else gives
    ``([], None)``: the candidate then compiles what it compiles when it is built.
    """
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return [], None
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    ahead = constants.get("COMPILE_AHEAD")
    if not isinstance(ahead, dict) or not isinstance(ahead.get("defines"), dict):
        return [], None
    arch = ahead.get("arch") if isinstance(ahead.get("arch"), str) else None
    cuda = constants.get(ahead.get("source"))
    if not isinstance(cuda, str):
        return [], arch
    defaults: dict[str, Any] = ahead["defines"]
    units: list[tuple[str, dict[str, Any]]] = []
    for setting in settings:
        defines = {name: setting.get(name, value) for name, value in defaults.items()}
        if (cuda, defines) not in units:
            units.append((cuda, defines))
    return units, arch


def ahead_compiles(source: str, settings: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``ahead_plan``'s units alone."""
    return ahead_plan(source, settings)[0]


def ahead_arch(source: str) -> str | None:
    """The ``"arch"`` of a candidate's ``COMPILE_AHEAD`` declaration (its compiles' target), if any."""
    return ahead_plan(source, [])[1]


def declared_params(module: ModuleType) -> dict[str, list]:
    """The candidate's tunable parameters: ``PARAMS = {"BLOCK": [128, 256]}``."""
    params = getattr(module, "PARAMS", {}) or {}
    return {str(k): list(v) for k, v in dict(params).items()}


# Every candidate module's name starts with this, so the sandbox can tell the candidate's own
# frames from library code (isolation refuses eval/exec/compile called from the former).
MODULE_PREFIX = "autotuner_candidate_"


def import_candidate(path: Path) -> ModuleType:
    """Execute the candidate file as a fresh module (compiles its kernels at import time)."""
    name = f"{MODULE_PREFIX}{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
