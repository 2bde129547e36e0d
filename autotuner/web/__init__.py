"""The archive in a browser: ``autotuner archive serve`` (needs the ``web`` extra).

Read-only pages over the ``Archive`` facade, and the JSON they are built from under
``/api``: the leaderboard per GPU and policy, a task, a kernel (highlighted source,
provenance, lineage tree, diff to each parent), a run (progress plot, verdicts, LLM spend).
Starlette routes, Jinja2 templates (autoescaped), Pygments for the source, uvicorn to serve.

Every query goes through ``Archive``; no route writes (any method but GET and HEAD is refused
with 405); everything from the archive is escaped, and the pages run no script at all
(``Content-Security-Policy: script-src 'none'``). ``serve`` binds 127.0.0.1 unless told
otherwise, and then answers only requests addressed to a loopback name.

    from autotuner.web import create_app, serve
    app = create_app(archive)          # an ASGI app
    serve(archive, port=8787)          # blocks until Ctrl-C
"""

from __future__ import annotations

from typing import Any

from autotuner.errors import AutotunerError

EXTRA_HINT = "the archive browser needs the web extra: pip install 'autotuner[web]' (starlette, jinja2, uvicorn, pygments)"
__all__ = ["EXTRA_HINT", "WebExtraMissingError", "create_app", "serve"]


class WebExtraMissingError(AutotunerError):
    """A package of the ``web`` extra is not installed."""

    def __init__(self, missing: str | None = None) -> None:
        super().__init__(f"{EXTRA_HINT}" + (f"; missing: {missing}" if missing else ""))


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from autotuner.web.app import create_app

        return create_app
    if name == "serve":
        from autotuner.web.server import serve

        return serve
    raise AttributeError(f"module 'autotuner.web' has no attribute {name!r}")
