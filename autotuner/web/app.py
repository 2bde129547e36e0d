"""The ASGI app: read-only routes over one ``Archive`` (see the package doc)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

try:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.types import ASGIApp, Receive, Scope, Send
except ImportError as e:  # the web extra
    from autotuner.web import WebExtraMissingError

    raise WebExtraMissingError(e.name) from None

from archive import Archive
from autotuner.errors import AutotunerError, NotFoundError
from autotuner.web import highlight, views
from autotuner.web.render import render

log = logging.getLogger(__name__)

READ_METHODS = ("GET", "HEAD")
# No script runs on these pages: whatever reached the archive cannot run here either.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}  # fmt: skip


class ReadOnly:
    """Refuse every method but GET and HEAD with 405, before any route sees the request,
    and add the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # no websockets
        if scope["method"] not in READ_METHODS:
            response = PlainTextResponse("read-only: only GET and HEAD are served\n", status_code=405,
                                         headers={"allow": ", ".join(READ_METHODS), **SECURITY_HEADERS})  # fmt: skip
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def json_response(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(views.plain(data), indent=1, allow_nan=False, default=str)
    return Response(body, status_code=status_code, media_type="application/json")


def _page(archive: Archive, template: str, build: Callable[..., dict[str, Any]], *params: str) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        args = [request.path_params[p] for p in params]
        context = build(archive, *args, request.query_params)
        return HTMLResponse(render(template, {**context, "archive_url": archive.url}))

    return endpoint


def _api(archive: Archive, fn: Callable[..., Any]) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return json_response(fn(archive, request.query_params, **request.path_params))

    return endpoint


def _api_index(_: Request) -> Response:
    return json_response({path: what for path, (what, _fn) in views.API.items()})


@lru_cache(maxsize=1)
def _pygments_css() -> str:
    return highlight.stylesheet()


def _css(_: Request) -> Response:
    return Response(_pygments_css(), media_type="text/css")


def _error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, NotFoundError) else getattr(exc, "status_code", 500)
    message = str(exc) if isinstance(exc, AutotunerError) else getattr(exc, "detail", "") or "server error"
    if status >= 500:
        log.exception("error serving %s", request.url.path, exc_info=exc)
    if request.url.path.startswith("/api"):
        return json_response({"error": message, "status": status}, status_code=status)
    html = render("error.html", {"page": "", "title": f"{status}", "status": status, "message": message, "api": "",
                                 "archive_url": ""})  # fmt: skip
    return HTMLResponse(html, status_code=status)


def routes(archive: Archive) -> list[Any]:
    static = StaticFiles(packages=[("autotuner.web", "static")])
    pages = [
        Route("/", lambda r: RedirectResponse("/leaderboard", status_code=307), methods=["GET"]),
        Route("/leaderboard", _page(archive, "leaderboard.html", views.leaderboard_page), methods=["GET"]),
        Route("/tasks", _page(archive, "tasks.html", views.tasks_page), methods=["GET"]),
        Route("/tasks/{ref}", _page(archive, "task.html", views.task_page, "ref"), methods=["GET"]),
        Route("/kernels/{kernel_id:int}", _page(archive, "kernel.html", lambda a, k, q: views.kernel_page(a, k),
                                                "kernel_id"), methods=["GET"]),  # fmt: skip
        Route("/runs", _page(archive, "runs.html", views.runs_page), methods=["GET"]),
        Route("/runs/{run_id:int}", _page(archive, "run.html", views.run_page, "run_id"), methods=["GET"]),
        Route("/api", _api_index, methods=["GET"]),
        Route("/static/pygments.css", _css, methods=["GET"]),
        Mount("/static", app=static, name="static"),
    ]
    return pages + [Route(path, _api(archive, fn), methods=["GET"]) for path, (_what, fn) in views.API.items()]


def create_app(archive: Archive, allowed_hosts: list[str] | None = None, debug: bool = False) -> Starlette:
    """The read-only browser over ``archive``; ``allowed_hosts`` limits the Host header (None: any)."""
    middleware = [Middleware(ReadOnly)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(debug=debug, routes=routes(archive), middleware=middleware,
                     exception_handlers={Exception: _error, NotFoundError: _error, 404: _error, 405: _error})  # fmt: skip
