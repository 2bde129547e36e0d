"""Every parse of Python source in the package goes through ``autotuner.pyast`` (one lock):
CPython 3.11's AST conversion shares its recursion counter between threads, and threads that
parse at once can fail with a spurious SystemError (python/cpython#106905; CI, 2026-12-02)."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

from autotuner import pyast

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("autotuner", "evolution", "archive")


def test_package_code_parses_only_through_the_lock() -> None:
    direct = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "pyast.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "parse"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "ast"):
                    direct.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert direct == [], f"ast.parse called directly (use autotuner.pyast.parse): {direct}"


def test_a_parse_waits_while_another_thread_parses() -> None:
    done = threading.Event()
    with pyast._LOCK:  # another thread's parse in progress
        worker = threading.Thread(target=lambda: (pyast.parse("x = 1"), done.set()))
        worker.start()
        assert not done.wait(0.2)
    worker.join(5)
    assert done.is_set()
    assert isinstance(pyast.parse("def f():\n    return 1").body[0], ast.FunctionDef)
