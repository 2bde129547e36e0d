"""Fixtures for the LLM tests: a real HTTP server speaking the OpenAI API, started per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_openai_server import FakeOpenAIServer
from .support import TEST_KEY


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(models=("fake-model", "fake-big")).start()
    yield server
    server.stop()


@pytest.fixture
def env() -> dict[str, str]:
    """The environment the client reads its key from (never the developer's own)."""
    return {"AUTOTUNER_LLM_API_KEY": TEST_KEY}
