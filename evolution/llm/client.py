"""The one place that talks to a model: the ``openai`` SDK against any compatible endpoint.

Retries live in exactly one layer, the SDK's own (``max_retries``: 429, 408, 409, 5xx and
timeouts, exponential backoff with jitter, ``Retry-After`` honoured); nothing here loops.

What ``complete`` does with failures:

* a call that failed after the SDK's retries (rate limit, server error, timeout, a bad
  request, a malformed body) is returned as data: an ``LLMCall`` with ``error`` set;
* an endpoint that cannot be reached at all, refuses the key, or does not know the model
  raises ``LLMUnavailableError`` naming the URL and what to check: every later call would
  fail the same way, so the run should stop rather than record a thousand failures.

Thread-safe: the SDK client is shared; ``submit`` runs calls on a pool of ``concurrency``
threads so that several requests are in flight while the GPU evaluates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import openai

from autotuner.errors import ConfigError, LLMUnavailableError
from evolution.llm.cache import ResponseCache, cache_key
from evolution.llm.llm_config import LLMConfig, resolve_api_key
from evolution.proposers.base import LLMCall

log = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, str]]


def estimate_tokens(text: str) -> int:
    """A rough count (4 characters a token) for servers that report no ``usage``."""
    return (len(text) + 3) // 4


def render_prompt(messages: Messages) -> str:
    """The messages as one readable text, as stored in ``LLMCall.prompt``."""
    return "\n\n".join(f"### {m['role']}\n{m['content']}" for m in messages)


class LLMClient:
    """``complete`` one chat request and account for it; ``submit`` it to the pool."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        cache: ResponseCache | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not config.models:
            raise ConfigError(
                "no LLM model configured: set AUTOTUNER_LLM_MODEL (e.g. 'gpt-4o' or 'a:2,b:1') "
                "or model / models in the [llm] table"
            )
        self.config = config
        self.cache = cache
        self._openai = openai.OpenAI(
            base_url=config.base_url,
            api_key=resolve_api_key(config, env),
            max_retries=config.max_retries,
            timeout=config.timeout_s,
        )
        host = (urlsplit(config.base_url).hostname or "").lower()
        # OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens);
        # local servers (vLLM, llama.cpp, Ollama) know max_tokens. Sent as a body field so
        # that every openai>=1.40 client passes it on.
        self._limit_param = "max_completion_tokens" if host.endswith("openai.com") else "max_tokens"
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="llm-call")

    # -- public API -------------------------------------------------------------------------
    def complete(self, model: str, messages: Messages, *, sample: int = 0) -> LLMCall:
        """One chat completion; see the module docstring for what is raised and what recorded.

        ``sample`` distinguishes repeated requests of one prompt in the cache key.
        """
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        prompt = render_prompt(messages)
        key = cache_key(self.config.base_url, model, messages, self.config.temperature,
                        self.config.max_tokens, sample)  # fmt: skip
        started = time.perf_counter()
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("llm %s: cache hit %s", model, key[:12])
                return LLMCall(model=model, prompt=prompt, response=hit.response, tokens_in=0, tokens_out=0,
                               latency_s=time.perf_counter() - started, cost_usd=0.0, cached=True)  # fmt: skip
        try:
            completion = self._openai.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.config.temperature,
                extra_body={self._limit_param: self.config.max_tokens},
            )
            text, usage, finish = _content(completion)
        except openai.APITimeoutError:
            return self._failed(model, prompt, started,
                                f"timeout: no answer within {self.config.timeout_s:g} s "
                                f"(after {self.config.max_retries} retries)")  # fmt: skip
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(
                f"cannot reach the LLM endpoint {self.config.base_url} ({_cause(exc)}): check that the "
                "server is running and AUTOTUNER_LLM_BASE_URL / [llm] base_url (it ends in /v1 for most servers)"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise LLMUnavailableError(
                f"the LLM endpoint {self.config.base_url} refused the API key (HTTP {exc.status_code}): "
                f"check the key in AUTOTUNER_LLM_API_KEY or {self.config.api_key_env}"
            ) from None
        except openai.NotFoundError as exc:
            raise LLMUnavailableError(
                f"the LLM endpoint {self.config.base_url} answered 404 for model {model!r}: "
                f"check the model name (AUTOTUNER_LLM_MODEL) and the base URL ({_short(exc.message)})"
            ) from None
        except openai.APIStatusError as exc:
            return self._failed(model, prompt, started,
                                f"HTTP {exc.status_code} after {self.config.max_retries} retries: {_short(exc.message)}")
        except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
            # a body that is not the chat-completions shape (malformed JSON, no choices, ...)
            return self._failed(model, prompt, started, f"malformed response: {type(exc).__name__}: {_short(str(exc))}")

        latency_s = time.perf_counter() - started
        tokens_in, tokens_out = usage if usage else (estimate_tokens(prompt), estimate_tokens(text))
        choice = self.config.model(model)
        cost_usd = choice.cost_usd(tokens_in, tokens_out) if choice else 0.0
        if finish == "length":
            log.info("llm %s: answer cut at max_tokens=%d", model, self.config.max_tokens)
        log.debug("llm %s: %d+%d tokens, %.2f s, $%.5f", model, tokens_in, tokens_out, latency_s, cost_usd)
        if self.cache is not None and text:
            self.cache.put(key, model, text, tokens_in, tokens_out)
        return LLMCall(model=model, prompt=prompt, response=text, tokens_in=tokens_in, tokens_out=tokens_out,
                       latency_s=latency_s, cost_usd=cost_usd)  # fmt: skip

    def submit(self, model: str, messages: Messages, *, sample: int = 0) -> Future[LLMCall]:
        """``complete`` on the pool; at most ``config.concurrency`` calls run at once."""
        return self._pool.submit(self.complete, model, messages, sample=sample)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._openai.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------
    def _failed(self, model: str, prompt: str, started: float, error: str) -> LLMCall:
        log.warning("llm %s call failed: %s", model, error)
        return LLMCall(model=model, prompt=prompt, response="", tokens_in=0, tokens_out=0,
                       latency_s=time.perf_counter() - started, cost_usd=0.0, error=error)  # fmt: skip


def _content(completion: Any) -> tuple[str, tuple[int, int] | None, str | None]:
    """(text, (prompt_tokens, completion_tokens) or None, finish_reason) of a completion."""
    if not getattr(completion, "choices", None):
        raise ValueError("the response has no choices")
    choice = completion.choices[0]
    text = choice.message.content or ""
    usage = getattr(completion, "usage", None)
    counts = None
    if usage is not None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        counts = (int(usage.prompt_tokens), int(usage.completion_tokens))
    return text, counts, choice.finish_reason


def _cause(exc: BaseException) -> str:
    """The innermost cause's message (e.g. 'Connection refused'), short."""
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return _short(str(inner) or type(inner).__name__)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
