"""The client against a real HTTP server: retries, failures as data, accounting, cache, leaks."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from autotuner.errors import LLMUnavailableError
from evolution.llm.cache import ResponseCache
from evolution.llm.client import LLMClient, estimate_tokens, render_prompt

from .fake_openai_server import Reply, response_text
from .support import PRICE_IN, PRICE_OUT, TEST_KEY, make_config

MESSAGES = [{"role": "system", "content": "You write CUDA."}, {"role": "user", "content": "relu please"}]


def test_success_records_tokens_cost_latency_and_sends_the_key(fake_server, env):
    fake_server.script(Reply.answer("hello there", prompt_tokens=1000, completion_tokens=250))
    with LLMClient(make_config(fake_server, temperature=0.3, max_tokens=777), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is None and call.response == "hello there"
    assert (call.tokens_in, call.tokens_out) == (1000, 250)
    assert call.cost_usd == pytest.approx((1000 * PRICE_IN + 250 * PRICE_OUT) / 1e6)
    assert call.latency_s > 0 and not call.cached
    assert call.prompt == render_prompt(MESSAGES)
    (req,) = fake_server.completions
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.body["model"] == "fake-model"
    assert req.body["messages"] == MESSAGES
    assert req.body["temperature"] == 0.3 and req.body["max_tokens"] == 777


def test_missing_usage_falls_back_to_an_estimate(fake_server, env):
    fake_server.script(Reply.answer("x" * 400, usage=False))
    with LLMClient(make_config(fake_server), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.tokens_out == 100
    assert call.tokens_in == estimate_tokens(render_prompt(MESSAGES))
    assert call.cost_usd > 0


def test_429_then_success_is_retried_by_the_sdk_and_recorded_once(fake_server, env):
    fake_server.script(Reply.status(429, retry_after=0.05), Reply.status(503, retry_after=0.01), Reply.answer("ok"))
    with LLMClient(make_config(fake_server, max_retries=3), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is None and call.response == "ok"
    assert len(fake_server.completions) == 3  # two retries reached the server
    gaps = [b.at - a.at for a, b in zip(fake_server.completions, fake_server.completions[1:])]
    assert gaps[0] >= 0.04  # Retry-After honoured
    assert call.latency_s >= 0.05  # latency covers the whole call, retries included


def test_5xx_beyond_max_retries_is_a_failed_call_not_an_exception(fake_server, env):
    fake_server.script(*[Reply.status(500, retry_after=0.01)] * 3)
    with LLMClient(make_config(fake_server, max_retries=2), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is not None and "HTTP 500" in call.error and "2 retries" in call.error
    assert call.response == "" and call.tokens_in == 0 and call.cost_usd == 0
    assert len(fake_server.completions) == 3  # 1 + max_retries, no second retry layer


def test_rate_limit_beyond_retries_names_429(fake_server, env):
    fake_server.script(*[Reply.status(429, retry_after=0.01)] * 2)
    with LLMClient(make_config(fake_server, max_retries=1), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert "HTTP 429" in call.error
    assert len(fake_server.completions) == 2


def test_slow_answer_beyond_timeout_is_a_failed_call(fake_server, env):
    fake_server.script(Reply.slow("too late", delay_s=3.0))
    started = time.monotonic()
    with LLMClient(make_config(fake_server, timeout_s=0.3, max_retries=0), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is not None and call.error.startswith("timeout")
    assert time.monotonic() - started < 2.5


def test_timeout_is_retried_by_the_sdk(fake_server, env):
    fake_server.script(Reply.slow("too late", delay_s=3.0), Reply.answer("in time"))
    with LLMClient(make_config(fake_server, timeout_s=0.3, max_retries=1), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is None and call.response == "in time"
    assert len(fake_server.completions) == 2


def test_malformed_json_is_a_failed_call(fake_server, env):
    fake_server.script(Reply.malformed())
    with LLMClient(make_config(fake_server, max_retries=0), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert call.error is not None and call.error.startswith("malformed response")


def test_response_without_choices_is_a_failed_call(fake_server, env):
    fake_server.script(Reply(raw_body='{"id": "x", "object": "chat.completion", "choices": []}'))
    with LLMClient(make_config(fake_server, max_retries=0), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert "no choices" in call.error


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_raises_unavailable_naming_the_url(env):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    from evolution.llm.llm_config import LLMConfig, ModelChoice

    config = LLMConfig(base_url=url, models=(ModelChoice("m"),), max_retries=0, timeout_s=2, cache=False)
    with LLMClient(config, env=env) as client, pytest.raises(LLMUnavailableError) as info:
        client.complete("m", MESSAGES)
    assert url in str(info.value) and "base_url" in str(info.value)
    assert TEST_KEY not in str(info.value)


def test_refused_key_raises_unavailable_without_the_key(fake_server, env):
    fake_server.script(Reply.status(401, retry_after=None, message=f"Incorrect API key provided: {TEST_KEY}"))
    with LLMClient(make_config(fake_server), env=env) as client, pytest.raises(LLMUnavailableError) as info:
        client.complete("fake-model", MESSAGES)
    assert "refused the API key" in str(info.value) and "AUTOTUNER_LLM_API_KEY" in str(info.value)
    assert TEST_KEY not in str(info.value)
    assert len(fake_server.completions) == 1  # 401 is not retried


def test_unknown_model_raises_unavailable(fake_server, env):
    fake_server.script(Reply.status(404, retry_after=None, message="model not found"))
    with LLMClient(make_config(fake_server), env=env) as client, pytest.raises(LLMUnavailableError) as info:
        client.complete("no-such-model", MESSAGES)
    assert "no-such-model" in str(info.value)


def test_cache_hit_costs_nothing_and_sends_nothing(fake_server, env, tmp_path):
    fake_server.script(Reply.answer("first", prompt_tokens=10, completion_tokens=5), Reply.answer("second"))
    cache = ResponseCache(tmp_path)
    with LLMClient(make_config(fake_server), cache=cache, env=env) as client:
        first = client.complete("fake-model", MESSAGES)
        again = client.complete("fake-model", MESSAGES)
        other_sample = client.complete("fake-model", MESSAGES, sample=1)
    assert not first.cached and first.cost_usd > 0
    assert again.cached and again.response == "first"
    assert again.cost_usd == 0 and again.tokens_in == again.tokens_out == 0
    assert not other_sample.cached and other_sample.response == "second"
    assert len(fake_server.completions) == 2
    assert TEST_KEY.encode() not in cache.path.read_bytes()


def test_failed_calls_are_not_cached(fake_server, env, tmp_path):
    fake_server.script(Reply.status(500, retry_after=0.01), Reply.answer("ok"))
    cache = ResponseCache(tmp_path)
    with LLMClient(make_config(fake_server, max_retries=0), cache=cache, env=env) as client:
        assert client.complete("fake-model", MESSAGES).error is not None
        assert client.complete("fake-model", MESSAGES).response == "ok"
    assert len(cache) == 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_submit_keeps_concurrency_requests_in_flight(fake_server, env, concurrency):
    fake_server.responder = lambda body: Reply.slow("ok", delay_s=0.12)
    with LLMClient(make_config(fake_server, concurrency=concurrency), env=env) as client:
        futures = [client.submit("fake-model", MESSAGES, sample=i) for i in range(6)]
        calls = [f.result(timeout=10) for f in futures]
    assert all(c.error is None for c in calls)
    assert fake_server.max_in_flight == concurrency


def test_the_key_never_leaks_into_logs_calls_or_repr(fake_server, env, caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="autotuner")
    fake_server.script(Reply.status(500, retry_after=0.01), Reply.answer(response_text("good_relu")))
    config = make_config(fake_server, max_retries=1)
    with LLMClient(config, cache=ResponseCache(tmp_path), env=env) as client:
        call = client.complete("fake-model", MESSAGES)
    assert TEST_KEY not in repr(config) and TEST_KEY not in repr(call)
    assert all(TEST_KEY not in r.getMessage() for r in caplog.records)
    for req in fake_server.completions:  # only the Authorization header carries it
        assert TEST_KEY not in str(req.body)
        assert [k for k, v in req.headers.items() if TEST_KEY in v] == ["authorization"]


def test_local_server_needs_no_key(fake_server):
    fake_server.script(Reply.answer("ok"))
    with LLMClient(make_config(fake_server), env={}) as client:
        assert client.complete("fake-model", MESSAGES).response == "ok"
    assert fake_server.completions[0].headers["authorization"] == "Bearer not-needed"


def test_open_cache_follows_the_config(tmp_path):
    from evolution.llm.cache import open_cache
    from evolution.llm.llm_config import LLMConfig

    assert open_cache(LLMConfig(cache=False)) is None
    cache = open_cache(LLMConfig(cache_dir=str(tmp_path / "c")))
    assert cache is not None and cache.path == tmp_path / "c" / "responses.sqlite" and len(cache) == 0
