"""The wheel carries the data the tool needs: the task suite, the CUDA templates, migrations."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_wheel_ships_suite_templates_and_migrations(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", "autotuner-runs"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("autotuner-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tasks = [n for n in names if n.startswith("autotuner_kernels/tasks/") and n.endswith(".py")]
    assert len(tasks) >= 30
    assert any(n.startswith("autotuner_kernels/templates/") and n.endswith(".cu") for n in names)
    assert any(n.startswith("archive/migrations/versions/") for n in names)
    assert not any(n.startswith("kernels/") for n in names), "a top-level `kernels` would shadow HF kernels"
    assert {"autotuner/web/templates/leaderboard.html", "autotuner/web/static/style.css"} <= set(names)  # archive serve
