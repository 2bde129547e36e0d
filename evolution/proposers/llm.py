"""The LLM proposer: an operator's prompt to a model, the model's answer to a Proposal.

Implements ``Proposer`` (see ``base.py``). Per request it builds the operator's messages,
sends ``request.n`` calls at once (at most ``config.concurrency`` in flight, shared by every
thread using this proposer), picks each call's model by weight with a seeded generator, and
turns every answer into a ``Proposal`` or, when it holds no candidate, into a note and an
``LLMCall`` whose ``error`` says why. Every call, failed ones too, is in ``llm_calls`` and
charged to the budget. Once the budget is spent no new call is sent (the batch says so in
``notes``); the run loop stops on ``Budget.check()``. Raises only ``LLMUnavailableError``
(endpoint unreachable, key refused, model unknown).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from autotuner.errors import LLMUnavailableError, ParseError
from evolution.budget import Budget
from evolution.llm.cache import ResponseCache
from evolution.llm.client import LLMClient, render_prompt
from evolution.llm.llm_config import LLMConfig
from evolution.llm.parse import extract_candidate, params_of, prose
from evolution.llm.prompts import PromptContext
from evolution.operators import REGISTRY
from evolution.proposers.base import LLMCall, Proposal, ProposalBatch, ProposalRequest

log = logging.getLogger(__name__)


class LLMProposer:
    """Candidates from an OpenAI-compatible model; thread-safe."""

    name = "llm"

    def __init__(
        self,
        config: LLMConfig,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        *,
        seed: int = 0,
        gpu_name: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.budget = budget if budget is not None else Budget()
        self.client = LLMClient(config, cache=cache, env=env)
        self.gpu_name = gpu_name
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._asked: Counter[str] = Counter()  # per (model, prompt): the next sample index
        self._batches = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="llm-propose")

    # -- the Proposer contract --------------------------------------------------------------
    def propose(self, request: ProposalRequest) -> ProposalBatch:
        batch = ProposalBatch()
        module = REGISTRY.get(request.operator)
        if module is None:
            batch.notes.append(f"the llm proposer has no operator {request.operator!r} (it has {sorted(REGISTRY)})")
            return batch
        if len(request.parents) < module.PARENTS:
            batch.notes.append(f"operator {request.operator} needs {module.PARENTS} parent(s), "
                               f"got {len(request.parents)}")  # fmt: skip
            return batch
        messages = module.build_messages(request, PromptContext(gpu_name=self._gpu_name(request)))

        pending: list[Future[LLMCall]] = []
        for i in range(request.n):
            spent = self.budget.exhausted()
            if spent is not None:
                batch.notes.append(f"budget exhausted ({spent}): {request.n - i} request(s) not sent")
                break
            model = self.choose_model()
            pending.append(self.client.submit(model, messages, sample=self._next_sample(model, messages)))

        unavailable: LLMUnavailableError | None = None
        for future in pending:
            try:
                call = future.result()
            except LLMUnavailableError as exc:  # every call fails alike; raised once all are back
                unavailable = unavailable or exc
                continue
            self.budget.charge(call)
            self._collect(request, call, batch)
        if unavailable is not None:
            raise unavailable
        log.info("llm %s for %s: %d proposal(s) from %d call(s)", request.operator, request.task.name,
                 len(batch.proposals), len(batch.llm_calls))  # fmt: skip
        return batch

    # -- extras for the run loop ------------------------------------------------------------
    def submit(self, request: ProposalRequest) -> Future[ProposalBatch]:
        """``propose`` in the background, so the loop can evaluate meanwhile."""
        return self._batches.submit(self.propose, request)

    def choose_model(self) -> str:
        """A model name drawn by weight (reproducible for a given seed and call order)."""
        models = self.config.models
        with self._lock:
            return self._rng.choices([m.name for m in models], weights=[m.weight for m in models])[0]

    def close(self) -> None:
        self._batches.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> "LLMProposer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------
    def _collect(self, request: ProposalRequest, call: LLMCall, batch: ProposalBatch) -> None:
        label = f"llm:{call.model}"
        if call.error is not None:
            batch.notes.append(f"{label} {request.operator}: call failed: {call.error}")
            batch.llm_calls.append(call)
            return
        try:
            source = extract_candidate(call.response)
        except ParseError as exc:
            call = replace(call, error=f"unparseable response: {exc.reason}")
            batch.notes.append(f"{label} {request.operator}: {call.error}")
            batch.llm_calls.append(call)
            return
        space, defaults = params_of(source)
        batch.llm_calls.append(call)
        batch.proposals.append(Proposal(
            source=source,
            operator=request.operator,
            proposer=label,
            params_space=space,
            default_params=defaults,
            parents=tuple(p.kernel_id for p in request.parents if p.kernel_id is not None),
            notes=prose(call.response),
            llm_call=call,
        ))  # fmt: skip

    def _next_sample(self, model: str, messages: list[dict[str, str]]) -> int:
        """0, 1, 2... for repeats of one prompt to one model: distinct answers, replayable cache."""
        key = hashlib.sha256(f"{model}\0{render_prompt(messages)}".encode()).hexdigest()
        with self._lock:
            sample = self._asked[key]
            self._asked[key] += 1
        return sample

    def _gpu_name(self, request: ProposalRequest) -> str:
        if self.gpu_name:
            return self.gpu_name
        for parent in request.parents:
            provenance = parent.result.provenance if parent.result is not None else None
            if provenance is not None and provenance.gpu_name:
                return provenance.gpu_name
        return ""
