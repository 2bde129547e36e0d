"""A scripted model behind ``FakeOpenAIServer``: answers chosen from what each request asks.

The search sends its requests concurrently (one per island), so a test cannot rely on their
order; ``ScriptedModel`` answers from the request itself: which task (``## The task: NAME``),
which operator (the prompt's section titles) and, for ``fix``, which kernel is being fixed
(the ``// KIND: ...`` marker in the parent's source). Per task it first plays a fixed script
of replies (cheats, malformed text, 429s, truncated answers), then asks ``next_answer``.

Also: ``answer`` wraps a module as a model would, ``variant`` makes a distinct but equivalent
source (unused device helpers with their own numbers, so the novelty filter admits it and
the CUDA still compiles), ``kind_of`` reads a source's marker.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

from .fake_openai_server import Reply

TASK_RE = re.compile(r"^## The task: (\S+) \(family", re.M)
KIND_RE = re.compile(r"// KIND: ([\w-]+)")


def answer(source: str, prose: str = "Here is the kernel.") -> str:
    return f"{prose}\n\n```python\n{source.rstrip()}\n```\n"


def truncated(source: str) -> Reply:
    """An answer cut off by max_tokens: the code block never closes and does not parse."""
    text = answer(source)
    return Reply.answer(text[: len(text) * 2 // 3], finish_reason="length")


def variant(source: str, n: int, kind: str = "") -> str:
    """``source`` with unused device helpers numbered ``n`` (and a ``// KIND:`` marker) at the
    top of its CUDA string: the same kernel, but a new candidate to the novelty filter."""
    helpers = "".join(
        f"__device__ __forceinline__ float variant_{n}_{k}(float v) {{ return v * {n + k}.5f + {3 * n + k}.25f; }}\n"
        for k in range(4)
    )
    marker = f"// KIND: {kind}\n" if kind else ""
    head, sep, rest = source.partition("r'''\n")
    assert sep, "the source holds no r''' CUDA string"
    return f"{head}{sep}{marker}{helpers}{rest}"


def kind_of(source: str) -> str | None:
    match = KIND_RE.search(source)
    return match.group(1) if match else None


def task_of(body: dict[str, Any]) -> str:
    match = TASK_RE.search(_user(body))
    return match.group(1) if match else ""


def operator_of(body: dict[str, Any]) -> str:
    """Which operator built this prompt (each has its own section titles)."""
    text = _user(body)
    if "## Parent A" in text:
        return "crossover"
    if "## A candidate that failed" in text:
        return "fix"
    if "## The current candidate" in text:
        return "optimize"
    return "translate"


def parent_kinds(body: dict[str, Any]) -> list[str]:
    """The markers of the kernels shown in the prompt as parents (not the kernel to beat)."""
    text = _user(body).split("## The kernel to beat", 1)[0]
    return KIND_RE.findall(text)


def _user(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")


class ScriptedModel:
    """``responder`` for ``FakeOpenAIServer``: per task, the script first, then ``next_answer``."""

    def __init__(self, scripts: dict[str, Iterable[Reply]],
                 next_answer: Callable[[str, str, dict[str, Any]], Reply]) -> None:
        self.scripts = {task: deque(replies) for task, replies in scripts.items()}
        self.next_answer = next_answer
        self.asked: Counter[tuple[str, str]] = Counter()  # (task, operator) -> requests
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        task, op = task_of(body), operator_of(body)
        with self.lock:
            self.asked[(task, op)] += 1
            script = self.scripts.get(task)
            if script:
                return script.popleft()
        return self.next_answer(task, op, body)
