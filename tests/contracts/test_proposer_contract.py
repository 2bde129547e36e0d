"""The Proposer contract run on every proposer: rules, the hand-written seeds, and the LLM
(through a real HTTP server speaking the OpenAI API)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest

from autotuner.tasks import Task, load_task, suite_dir
from evolution.proposers.base import Proposer
from evolution.proposers.llm import LLMProposer
from evolution.proposers.rules import RulesProposer
from evolution.proposers.seeds import SeedsProposer
from llm.fake_openai_server import FakeOpenAIServer, Reply, response_text
from llm.support import TEST_KEY, make_config

from .proposer_contract import ProposerContract

# Each implementation with a suite task it can translate.
TASKS = {"rules": "activation/relu.py", "seed": "decode/rope_bf16.py", "llm": "activation/relu.py"}


@pytest.fixture(params=sorted(TASKS))
def implementation(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def task(implementation: str) -> Task:
    return load_task(suite_dir() / TASKS[implementation])


@pytest.fixture
def proposer(implementation: str) -> Iterator[Proposer]:
    if implementation == "rules":
        yield RulesProposer()
    elif implementation == "seed":
        yield SeedsProposer()
    else:
        server = FakeOpenAIServer(models=("fake-model",)).start()
        server.responder = lambda body: Reply.answer(response_text("good_relu"))
        try:
            with LLMProposer(make_config(server), env={"AUTOTUNER_LLM_API_KEY": TEST_KEY}) as llm:
                yield llm
        finally:
            server.stop()


class TestProposerContract(ProposerContract):
    """Every test of the contract, once per implementation."""


def test_every_proposer_is_covered() -> None:
    """A proposer class added anywhere under evolution/proposers without a line in TASKS fails here."""
    import evolution.proposers as package

    names = set()
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        names |= {cls.name for cls in vars(module).values() if isinstance(cls, type)
                  and cls.__module__ == module.__name__ and callable(getattr(cls, "propose", None))
                  and isinstance(getattr(cls, "name", None), str)}
    assert names == set(TASKS)
