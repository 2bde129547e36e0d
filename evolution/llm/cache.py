"""A response cache on disk (SQLite), so that a repeated request costs nothing.

The key is the SHA-256 of everything that decides the answer: endpoint, model, messages,
temperature, max_tokens, and a sample index (so that n > 1 proposals for one prompt are n
distinct requests). The API key is never part of it. Only successful responses are stored.
Safe for several threads and processes: each operation opens its own connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autotuner.errors import ConfigError
from evolution.llm.llm_config import LLMConfig

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CachedResponse:
    response: str
    tokens_in: int  # what the original call used (the cached replay costs nothing)
    tokens_out: int


def cache_key(
    base_url: str,
    model: str,
    messages: Sequence[dict[str, str]],
    temperature: float,
    max_tokens: int,
    sample: int = 0,
) -> str:
    payload = {
        "base_url": base_url.rstrip("/"),
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "temperature": temperature,
        "max_tokens": max_tokens,
        "sample": sample,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """``get(key)`` / ``put(key, ...)`` over one SQLite file, ``<folder>/responses.sqlite``."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder).expanduser() / "responses.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"llm response cache {self.path} cannot be opened: {exc}") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            with db:  # commit or roll back
                yield db
        finally:
            db.close()

    def get(self, key: str) -> CachedResponse | None:
        try:
            with self._connect() as db:
                row = db.execute(
                    "SELECT response, tokens_in, tokens_out FROM responses WHERE key = ?", (key,)
                ).fetchone()
        except sqlite3.Error as exc:  # a broken cache only costs a request
            log.warning("llm cache %s unreadable (%s); asking the model", self.path, exc)
            return None
        return CachedResponse(*row) if row else None

    def put(self, key: str, model: str, response: str, tokens_in: int, tokens_out: int) -> None:
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                    (key, model, response, tokens_in, tokens_out, time.time()),
                )
        except sqlite3.Error as exc:
            log.warning("llm cache %s not written (%s)", self.path, exc)

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


def open_cache(config: LLMConfig) -> ResponseCache | None:
    """The cache the config asks for (``config.resolved_cache_dir()``), or None when it is off."""
    return ResponseCache(config.resolved_cache_dir()) if config.cache else None
