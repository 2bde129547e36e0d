"""The browser's pages as timed cases for ``autotuner bench archive``: the same views and
templates the server runs (the ASGI layer around them adds well under a millisecond)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from archive import Archive
from autotuner.web import views
from autotuner.web.render import render


def _page(archive: Archive, template: str, context: dict[str, Any]) -> str:
    return render(template, {**context, "archive_url": archive.url})


def page_cases(archive: Archive) -> dict[str, Callable[[], Any]]:
    """``page: leaderboard`` and ``page: task`` (a task in the middle of the list), rendered."""
    tasks = archive.tasks()
    middle = tasks[len(tasks) // 2].id if tasks else 0
    return {
        "page: leaderboard": lambda: _page(archive, "leaderboard.html", views.leaderboard_page(archive, {})),
        "page: leaderboard (stale, sorted)": lambda: _page(
            archive, "leaderboard.html", views.leaderboard_page(archive, {"include_stale": "1", "sort": "speedup_eager"})),
        "page: task": lambda: _page(archive, "task.html", views.task_page(archive, str(middle), {})),
    }
