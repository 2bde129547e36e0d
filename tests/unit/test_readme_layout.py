"""The README's layout section names every folder of the checkout, two levels deep."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracked_folders() -> set[str]:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("git is not available")
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    folders = set()
    for line in done.stdout.splitlines():
        parts = Path(line).parts[:-1]
        folders |= {"/".join(parts[: i + 1]) for i in range(min(2, len(parts)))}
    return folders


def test_every_folder_is_named() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    missing = sorted(f for f in _tracked_folders() if Path(f).name + "/" not in layout)
    assert missing == [], f"README's layout section leaves out {missing}"
