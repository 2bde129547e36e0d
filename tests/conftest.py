"""Probe the hardware once; tests marked ``gpu`` skip with the reason where it is missing."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _checkout_status() -> str | None:
    """``git status --porcelain`` of the checkout (ignored files included), None outside a git checkout."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--ignored", "--untracked-files=all"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    noise = ("__pycache__/", ".pytest_cache/", ".egg-info/")  # Python's and pytest's own caches
    return "\n".join(line for line in done.stdout.splitlines() if not any(n in line for n in noise))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._checkout_before = _checkout_status()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests write under tmp_path only: a file left in the checkout fails the session."""
    before, after = getattr(session.config, "_checkout_before", None), _checkout_status()
    if before is None or after is None or exitstatus != 0:
        return
    new = sorted(set(after.splitlines()) - set(before.splitlines()))
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"error: the tests left files in the checkout (write under tmp_path): {new}"
        reporter.write_line(message, red=True) if reporter else print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@functools.lru_cache(maxsize=1)
def gpu_missing_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible (torch.cuda.is_available() is False)"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed (pip install 'autotuner[cuda12]' or '[cuda13]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = gpu_missing_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPU test: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
