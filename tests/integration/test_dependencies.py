"""Every third-party import of the installed packages is declared in pyproject.toml.

A module imported on the main path must be a required dependency; one that only an optional
part uses must be declared in the extra that guards it (and its import must be guarded, so
that the package still imports without the extra). This is what a fresh ``pip install``
sees; a package installed by hand on the CI machine can no longer hide a missing one.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("autotuner", "evolution", "archive")
FIRST_PARTY = {"autotuner", "evolution", "archive", "autotuner_kernels"}
# The exported package's template is another project with its own pyproject (it is written out,
# never imported from here): its imports are not this project's dependencies.
NOT_OURS = (ROOT / "autotuner" / "export" / "package_template",)
# Import name -> distribution name(s), where they differ.
DISTRIBUTION = {"pynvml": ("nvidia-ml-py",), "cupy": ("cupy-cuda12x", "cupy-cuda13x"), "yaml": ("pyyaml",),
                "psycopg": ("psycopg",), "PIL": ("pillow",)}  # fmt: skip
# Imports that only an optional part needs -> the extras that must declare them.
OPTIONAL = {"cupy": ("cuda12", "cuda13"), "pynvml": ("nvml",), "transformers": ("hf",), "safetensors": ("hf",),
            "starlette": ("web",), "jinja2": ("web",), "uvicorn": ("web",), "pygments": ("web",),
            "ray": ("ray",)}  # fmt: skip


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {k: {_name(r) for r in v} for k, v in project["optional-dependencies"].items()}
    return required, extras


def _imports() -> list[tuple[str, Path, int, bool]]:
    """(top-level module, file, line, guarded) for every absolute import; guarded = not at module level
    outside a try block, so importing the file does not need the module."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if any(path.is_relative_to(skip) for skip in NOT_OURS):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            unguarded = {id(node) for node in tree.body}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.append((name.split(".")[0], path, node.lineno, id(node) not in unguarded))
    return found


def _third_party() -> list[tuple[str, Path, int, bool]]:
    return [i for i in _imports() if i[0] not in sys.stdlib_module_names and i[0] not in FIRST_PARTY]


def test_the_scan_sees_the_known_third_party_imports() -> None:
    modules = {m for m, *_ in _third_party()}
    assert {"torch", "sqlalchemy", "optuna", "matplotlib", "openai", "cupy"} <= modules


def test_every_required_import_is_a_declared_dependency() -> None:
    required, _ = _pyproject()
    missing = sorted({f"{m} ({path.relative_to(ROOT)}:{line})" for m, path, line, _ in _third_party()
                      if m not in OPTIONAL and not set(DISTRIBUTION.get(m, (m.lower(),))) & required})  # fmt: skip
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_every_optional_import_is_in_the_extra_that_guards_it() -> None:
    _, extras = _pyproject()
    faults = []
    for module, path, line, guarded in _third_party():
        if module not in OPTIONAL:
            continue
        where = f"{module} ({path.relative_to(ROOT)}:{line})"
        for extra in OPTIONAL[module]:
            if not set(DISTRIBUTION.get(module, (module,))) & extras.get(extra, set()):
                faults.append(f"{where}: not declared in the [{extra}] extra")
        if not guarded:
            faults.append(f"{where}: imported at module level, so the package needs it without the extra")
    assert not faults, faults


def test_the_documented_extras_exist() -> None:
    _, extras = _pyproject()
    assert {"hf", "nvml", "cuda12", "cuda13", "web", "dev", "ray"} <= set(extras)
