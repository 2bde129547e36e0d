"""Greedy generation: prefill the prompt, then one token per decode step.

A decode step at batch 1 is a few hundred small kernels; launched one by one from Python
their launch cost dominates. ``GraphDecoder`` captures the step once in a CUDA graph
(static input buffers for the token and its position, the static-shape attention path) and
replays it; the KV cache is a static buffer the graph writes in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from autotuner.deploy.model import Transformer
from autotuner.errors import NoGPUError

Step = Callable[[torch.Tensor, int], torch.Tensor]  # (token [b, 1], position) -> logits [b, vocab]
# (token [b, 1], position) -> the greedy next token [b, 1] int64, on the device (no host sync)
GreedyStep = Callable[[torch.Tensor, int], torch.Tensor]


def greedy_from(step: Step) -> GreedyStep:
    """A greedy step from a logits step: the argmax as one more kernel after it."""

    def greedy(token: torch.Tensor, position: int) -> torch.Tensor:
        return step(token, position).argmax(dim=-1, keepdim=True)

    return greedy


@torch.no_grad()
def prefill(model: Transformer, prompt: torch.Tensor, last_only: bool = True) -> torch.Tensor:
    """prompt: [b, t] -> logits [b, vocab] of the last position (or [b, t, vocab])."""
    t = prompt.shape[1]
    pos = torch.arange(t, device=prompt.device)
    logits = model(prompt, pos, kv_len=t, last_only=last_only)
    return logits[:, -1] if last_only else logits


def eager_step(model: Transformer) -> Step:
    """Decode with dynamic shapes: attend to the cache written so far (attention-decode slot)."""

    buffers: dict[torch.device, torch.Tensor] = {}

    @torch.no_grad()
    def step(token: torch.Tensor, position: int) -> torch.Tensor:
        # fill_ is a kernel; torch.tensor([position], device=...) would be a pageable copy
        # that waits for the stream, so the host could never run ahead of the GPU.
        pos = buffers.setdefault(token.device, torch.zeros(1, dtype=torch.long, device=token.device))
        pos.fill_(position)
        return model(token, pos, kv_len=position + 1)[:, -1]

    return step


def static_step(model: Transformer, forward: Callable[..., torch.Tensor] | None = None) -> Step:
    """Decode with static shapes (masked attention over the whole cache): what graphs and
    torch.compile see. ``forward`` may be a compiled ``model.forward``."""
    fn = forward or model.forward
    buffers: dict[torch.device, torch.Tensor] = {}

    @torch.no_grad()
    def step(token: torch.Tensor, position: int) -> torch.Tensor:
        pos = buffers.setdefault(token.device, torch.zeros(1, dtype=torch.long, device=token.device))
        pos.fill_(position)
        return fn(token, pos)[:, -1]

    return step


class GraphDecoder:
    """One decode step captured in a CUDA graph; ``step`` copies inputs in and replays.

    ``greedy=True`` also captures the greedy choice and its feedback: the next token written
    into the graph's own token buffer and the position advanced, both on the device. Greedy
    decoding (``greedy_step``) then replays with nothing launched between replays, where a
    logits step needs an argmax, a token copy and a position fill each step (three kernels
    outside the graph that the graph's first kernel waits for).

    ``unroll=k`` (greedy only) captures k steps back to back in the one graph, each fed the
    token the one before chose: a replay decodes k tokens. The steps' kernels then chain
    across step boundaries as they do inside a step (programmatic dependent launch included),
    and the per-replay launch is paid once per k tokens. What it costs: a caller that stops
    on an end-of-sequence token learns of it up to k - 1 tokens late (vLLM's multi-step
    scheduling makes the same trade)."""

    def __init__(self, model: Transformer, warmup: int = 3,
                 forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, pdl: bool = False,
                 greedy: bool = False, pick: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 unroll: int = 1) -> None:
        """``forward(token [b, 1], pos [1]) -> logits [b, vocab]``: what one step runs (default: the
        model's static-shape forward); ``pdl``: launch the kernels that support it with programmatic
        dependent launch while capturing (``autotuner.runtime.pdl``); ``pick(logits) -> token [b, 1]``:
        the greedy token (default: the argmax), captured when ``greedy``; ``unroll``: greedy steps
        per replay."""
        from autotuner.runtime.pdl import pdl_enabled

        if unroll < 1 or (unroll > 1 and not greedy):
            raise ValueError(f"unroll={unroll}: a graph holds several steps only when greedy (got greedy={greedy})")
        if not torch.cuda.is_available():
            raise NoGPUError("CUDA-graph decode needs a CUDA GPU")
        device = model.tok_embeddings.weight.device
        self.model = model
        self.unroll = unroll
        # The tokens a replay chooses, one column per step; the last column is the next replay's
        # input (``token``), so feeding back needs no copy of its own.
        self.history = torch.zeros(model.batch, unroll, dtype=torch.long, device=device)
        self.token = self.history[:, unroll - 1 : unroll]
        # Captured at the last cache position: whatever warm-up writes there is overwritten
        # by the step that reaches it, before any step reads it.
        self.pos = torch.full((1,), model.max_seq - unroll, dtype=torch.long, device=device)
        self.graph = torch.cuda.CUDAGraph()
        self.pdl = pdl
        self.capturing_step = 0  # which of the graph's steps ``forward`` is being called for
        run = forward or (lambda tokens, pos: model(tokens, pos)[:, -1])
        with torch.no_grad(), pdl_enabled(pdl):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # compile kernels, pick cuBLAS algorithms, allocate
                for _ in range(warmup):
                    run(self.token, self.pos)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(self.graph):
                for i in range(unroll):
                    self.capturing_step = i
                    tokens = self.token if i == 0 else self.history[:, i - 1 : i]
                    self.logits = run(tokens, self.pos)  # [b, vocab], a static buffer (the last step's)
                    if greedy:
                        chosen = pick(self.logits) if pick else self.logits.argmax(dim=-1, keepdim=True)
                        self.feed_back(chosen, i)
            self.capturing_step = 0
        self.greedy = greedy
        self._next_position: int | None = None  # what the graph's position buffer holds now

    def feed_back(self, chosen: torch.Tensor, index: int) -> None:
        """Captured after each greedy step: its token into ``history[:, index]``, the position + 1."""
        self.history[:, index].copy_(chosen.reshape(-1))
        self.pos.add_(1)

    def step(self, token: torch.Tensor, position: int) -> torch.Tensor:
        self.token.copy_(token)
        self.pos.fill_(position)
        self.graph.replay()
        self._next_position = position + self.unroll if self.greedy else position
        return self.logits

    def greedy_step(self, token: torch.Tensor, position: int) -> torch.Tensor:
        """The next ``unroll`` greedy tokens [b, unroll] for the positions from ``position`` on: the
        graph's own buffer, overwritten by the next replay (copy it to keep it). Passing back its
        last column (``out[:, -1:]``), at the position after them, launches nothing but the replay."""
        if not self.greedy:
            raise ValueError("greedy_step needs a decoder captured with greedy=True")
        if not _same_view(token, self.token):
            self.token.copy_(token)
        if position != self._next_position:
            self.pos.fill_(position)
        self.graph.replay()
        self._next_position = position + self.unroll
        return self.history


def _same_view(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
            and a.device == b.device and a.dtype == b.dtype)


@dataclass
class Generation:
    tokens: torch.Tensor  # [b, steps] generated token ids
    logits: list[torch.Tensor]  # per step [b, vocab] fp32 (kept when asked)


@torch.no_grad()
def generate(model: Transformer, prompt: torch.Tensor, steps: int, step: Step | None = None,
             keep_logits: bool = False) -> Generation:
    """Greedy decoding of ``steps`` tokens after ``prompt`` [b, t]; no host sync per step."""
    step = step or eager_step(model)
    t = prompt.shape[1]
    if t + steps > model.max_seq:
        raise ValueError(f"prompt {t} + {steps} steps exceeds the cache ({model.max_seq} positions)")
    logits = prefill(model, prompt)
    out = torch.empty(prompt.shape[0], steps, dtype=torch.long, device=prompt.device)
    kept = []
    for i in range(steps):
        if keep_logits:
            kept.append(logits.float().clone())
        token = logits.argmax(dim=-1, keepdim=True)  # [b, 1]
        out[:, i : i + 1] = token
        if i + 1 < steps:
            logits = step(token, t + i)
    return Generation(out, kept)
