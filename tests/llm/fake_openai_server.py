"""A real HTTP server speaking the OpenAI chat-completions API, answering from a script.

Used by the LLM tests (and the end-to-end GPU test): the ``openai`` SDK talks to it over a
socket exactly as it would to OpenAI, vLLM or llama.cpp, so retries, timeouts, headers and
JSON parsing are the SDK's own, never patched.

    server = FakeOpenAIServer().start()
    server.script(Reply.status(429, retry_after=0.01), Reply.answer(text))
    ...  # base_url=server.base_url
    server.requests   # what arrived: path, headers, JSON body, model
    server.stop()

Each POST /v1/chat/completions takes the next scripted ``Reply``; when the script is empty,
``responder(body)`` answers (default: HTTP 500 saying the script ran out). GET /v1/models
lists ``models``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RESPONSES_DIR = Path(__file__).resolve().parent / "responses"


def response_text(name: str) -> str:
    """A scripted model answer from ``tests/llm/responses/<name>.md``."""
    return (RESPONSES_DIR / f"{name}.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a completion text, an HTTP error, a delay, or a raw body."""

    text: str | None = None
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (beyond the client's timeout: a timeout)
    raw_body: str | None = None  # sent as is (malformed JSON)
    usage: bool = True  # include the usage block
    finish_reason: str = "stop"
    prompt_tokens: int | None = None  # else a word count of the prompt
    completion_tokens: int | None = None

    @classmethod
    def answer(cls, text: str, **kw: Any) -> "Reply":
        return cls(text=text, **kw)

    @classmethod
    def status(cls, code: int, retry_after: float | None = 0.01, message: str = "") -> "Reply":
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        body = json.dumps({"error": {"message": message or f"scripted HTTP {code}", "type": "scripted",
                                     "code": str(code)}})  # fmt: skip
        return cls(code=code, headers=headers, raw_body=body)

    @classmethod
    def slow(cls, text: str, delay_s: float) -> "Reply":
        return cls(text=text, delay_s=delay_s)

    @classmethod
    def malformed(cls) -> "Reply":
        return cls(raw_body='{"id": "chatcmpl-x", "choices": [{"message": ', headers={})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))


class FakeOpenAIServer:
    def __init__(self, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.models = models
        self.requests: list[Received] = []
        self.responder: Callable[[dict[str, Any]], Reply] = lambda body: Reply.status(
            500, retry_after=None, message="the fake server's script ran out")
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "FakeOpenAIServer":
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting --------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.max_in_flight = self.in_flight

    @property
    def completions(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(body)

    def _enter(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def completion_json(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    data: dict[str, Any] = {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
        }],
    }  # fmt: skip
    if reply.usage:
        p = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_words
        c = reply.completion_tokens if reply.completion_tokens is not None else len((reply.text or "").split())
        data["usage"] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    return data


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/").endswith("/models"):
            data = {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in self.fake.models]}
            self._send(200, json.dumps(data), {})
        else:
            self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}), {})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        self.fake._enter(received)
        try:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}), {})
                return
            reply = self.fake._next(body)
            if reply.delay_s and self.fake._stopping.wait(reply.delay_s):
                return
            text = reply.raw_body if reply.raw_body is not None else json.dumps(completion_json(reply, body))
            self._send(reply.code, text, reply.headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass
        finally:
            self.fake._leave()

    def _send(self, code: int, text: str, headers: dict[str, str]) -> None:
        payload = text.encode("utf-8")
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
