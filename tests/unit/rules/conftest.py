"""Shared fixtures for the rule-based proposer's tests: the suite's tasks, traced once."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.tasks import Task, discover_tasks, load_task, suite_dir

SUITE = suite_dir()
PATHS = discover_tasks(SUITE)


def rel(path: Path) -> str:
    return path.relative_to(SUITE).as_posix().removesuffix(".py")


@pytest.fixture(scope="session")
def suite_tasks() -> dict[str, Task]:
    return {rel(p): load_task(p) for p in PATHS}


@pytest.fixture(scope="session")
def translations(suite_tasks):  # noqa: ANN001, ANN201 - {name: Translation}
    """What the rules proposer offers per task: its translations, then the hand-written seeds."""
    from evolution.proposers.rules import translate
    from evolution.proposers.seeds import seeds_for

    out = {}
    for name, task in suite_tasks.items():
        out[name] = translate(task)
        out[name].proposals += seeds_for(task)
    return out


def write_task(tmp_path: Path, forward: str, init: str = "", extra: str = "", policy: str = "strict",
               inputs: str = "[torch.randn(8, 16)]") -> Path:
    """A small task file (one forward body) for tests of what the rules do not translate."""
    path = tmp_path / "task.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        "class Model(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"{init}"
        "\n    def forward(self, x):\n"
        f"{forward}\n\n\n"
        f"def get_inputs():\n    return {inputs}\n\n\n"
        "def get_init_inputs():\n    return []\n\n\n"
        f'POLICY = "{policy}"\n{extra}'
    )
    return path
