"""``ast.parse`` behind one process-wide lock.

CPython 3.11 keeps the AST conversion's recursion counter per interpreter, not per thread, so
two threads parsing at once can fail with a spurious ``SystemError: AST constructor recursion
depth mismatch`` (python/cpython#106905; seen here in CI, four threads proposing seeds at once).
The proposers, the static check and the LLM parser run on worker threads, so every parse in the
package goes through here. Parsing is fast; the lock costs nothing measurable.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.Module:
    """``ast.parse(source, filename, mode)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename, mode)
