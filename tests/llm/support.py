"""Helpers shared by the LLM tests (imported, not fixtures)."""

from __future__ import annotations

from evolution.llm.llm_config import LLMConfig, ModelChoice

from .fake_openai_server import FakeOpenAIServer

TEST_KEY = "sk-test-0123456789-secret"  # what the tests put in the environment
PRICE_IN, PRICE_OUT = 2.0, 8.0  # USD per million tokens of the default test model


def make_config(server: FakeOpenAIServer, **overrides: object) -> LLMConfig:
    values: dict[str, object] = {
        "base_url": server.base_url,
        "models": (ModelChoice("fake-model", 1.0, price_in_per_mtok=PRICE_IN, price_out_per_mtok=PRICE_OUT),),
        "timeout_s": 5.0,
        "max_retries": 2,
        "concurrency": 4,
        "cache": False,
    }
    values.update(overrides)
    return LLMConfig(**values)  # type: ignore[arg-type]
