"""Run budgets: tokens, money, candidates and wall time, shared by every thread of a run.

Who charges what: the LLM proposer charges every model call (``charge``) and refuses to send
a new one once ``exhausted()``; the run loop counts candidates (``count_candidate``) and
calls ``check()`` between steps. Calls already in flight when a cap trips still finish and
are charged, so tokens and money may overshoot a cap by at most ``concurrency`` calls.
Cached calls cost nothing and are not charged tokens.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from autotuner.errors import BudgetExhausted, ConfigError
from evolution.proposers.base import LLMCall

CAPS = ("max_tokens", "max_cost_usd", "max_candidates", "max_wall_s")


class Budget:
    """Thread-safe counters with optional caps (``None``: no cap). The clock starts at creation."""

    def __init__(
        self,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_candidates: int | None = None,
        max_wall_s: float | None = None,
        *,
        start_within_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, cap in zip(CAPS, (max_tokens, max_cost_usd, max_candidates, max_wall_s)):
            if cap is not None and not (isinstance(cap, (int, float)) and math.isfinite(cap) and cap >= 0):
                raise ConfigError(f"budget {name} must be a number >= 0 or unset, got {cap!r}")
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.max_candidates = max_candidates
        self.max_wall_s = max_wall_s
        if start_within_s is not None and not (math.isfinite(start_within_s) and start_within_s > 0):
            raise ConfigError(f"budget start_within_s must be a number > 0 or unset, got {start_within_s!r}")
        # Not a cap: no task starts its search after this many seconds, and the one searching then
        # finishes (so a run cut by a machine's time limit still ends with every searched task whole)
        self.start_within_s = start_within_s
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._tokens_in = 0
        self._tokens_out = 0
        self._cost_usd = 0.0
        self._calls = 0
        self._failed = 0
        self._cached = 0
        self._candidates = 0

    def charge(self, call: LLMCall) -> None:
        """Account for one model call (failed and cached ones included, at what they cost)."""
        with self._lock:
            self._calls += 1
            self._failed += call.error is not None
            if call.cached:
                self._cached += 1
                return
            self._tokens_in += call.tokens_in
            self._tokens_out += call.tokens_out
            self._cost_usd += call.cost_usd

    def restore(self, *, candidates: int = 0, tokens_in: int = 0, tokens_out: int = 0, cost_usd: float = 0.0,
                calls: int = 0) -> None:
        """Count what a run spent before it was killed, so a resumed run honours the same caps
        (read from the archive; wall time counts this session's only)."""
        with self._lock:
            self._candidates += candidates
            self._tokens_in += tokens_in
            self._tokens_out += tokens_out
            self._cost_usd += cost_usd
            self._calls += calls

    def count_candidate(self, n: int = 1) -> None:
        with self._lock:
            self._candidates += n

    def exhausted(self) -> str | None:
        """Why the budget is spent (naming the cap), or None while it is not."""
        with self._lock:
            tokens = self._tokens_in + self._tokens_out
            cost, candidates = self._cost_usd, self._candidates
        wall_s = self._clock() - self._start
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"max_tokens reached: {tokens} tokens used of {self.max_tokens}"
        if self.max_cost_usd is not None and cost >= self.max_cost_usd:
            return f"max_cost_usd reached: ${cost:.4f} spent of ${self.max_cost_usd:.4f}"
        if self.max_candidates is not None and candidates >= self.max_candidates:
            return f"max_candidates reached: {candidates} candidates of {self.max_candidates}"
        if self.max_wall_s is not None and wall_s >= self.max_wall_s:
            return f"max_wall_s reached: {wall_s:.1f} s elapsed of {self.max_wall_s:.1f} s"
        return None

    def start_closed(self) -> str | None:
        """Why no task may start its search any more (``start_within_s`` has passed), or None."""
        wall_s = self._clock() - self._start
        if self.start_within_s is not None and wall_s >= self.start_within_s:
            return f"start_within_s passed: {wall_s:.1f} s elapsed of {self.start_within_s:.1f} s"
        return None

    def check(self) -> None:
        """Raise ``BudgetExhausted`` (its ``cap`` attribute names the cap) once a cap is reached."""
        reason = self.exhausted()
        if reason is not None:
            exc = BudgetExhausted(f"budget exhausted: {reason}")
            exc.cap = reason.split(" ", 1)[0]  # type: ignore[attr-defined]
            raise exc

    def spent(self) -> dict[str, Any]:
        """What was used, for the archive's ``runs.budgets_spent``."""
        with self._lock:
            return {
                "llm_calls": self._calls,
                "llm_calls_failed": self._failed,
                "llm_calls_cached": self._cached,
                "llm_tokens_in": self._tokens_in,
                "llm_tokens_out": self._tokens_out,
                "llm_tokens": self._tokens_in + self._tokens_out,
                "llm_usd": self._cost_usd,
                "candidates": self._candidates,
                "wall_s": self._clock() - self._start,
            }

    def caps(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in CAPS}
