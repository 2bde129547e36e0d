"""Prefill replayed from CUDA graphs, one per bucketed prompt length.

Launched op by op, a prompt of a few hundred tokens costs more in Python and launch gaps
than on the GPU (measured: 8,900 tok/s at 128 tokens against torch.compile's 49,300). A
graph per bucket removes both. A prompt is padded at its end to its bucket: causal
attention keeps every real token blind to the padding, the padding's keys and values land
in cache positions that the first decode steps overwrite before any step reads them
(decode attends only to positions below ``cache_len``), and the logits are taken at the
last real token through a device index, so one graph serves every length in its bucket.

What a bucket's graph runs comes in two forms. ``slots``: the model's forward with its own
slot kernels (tuned for decode's one row; at hundreds of rows each op is still its own
launch). ``compiled``: the same forward with PyTorch's ops, compiled by torch.compile, which
fuses the elementwise chains around the GEMMs (norm, rotary, SiLU x up, residual) into a few
kernels; captured into the bucket's graph like the other. ``auto`` (the default) captures
both on a bucket's first use, times their replays back to back and keeps the faster, so a
bucket is never slower than either form; ``choices`` says what each bucket took and why.
"""

from __future__ import annotations

import logging
import statistics
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from autotuner.deploy.model import Transformer
from autotuner.deploy.slots import Slots
from autotuner.errors import NoGPUError

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048)
PREFILL_FORMS = ("slots", "compiled")  # what a bucket's graph can run; "auto" times both
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (tokens, positions, last) -> logits


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket holding ``length`` tokens; past the largest, the next multiple of it."""
    for b in sorted(buckets):
        if length <= b:
            return b
    top = max(buckets)
    return -(-length // top) * top


@dataclass(frozen=True)
class BucketChoice:
    """What one bucket's graph runs: the form kept, each form's median replay (ms), and why a
    form was not timed (it failed to compile or capture: the other serves the bucket)."""

    bucket: int
    form: str
    replay_ms: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        timed = ", ".join(f"{f} {ms:.3f} ms" for f, ms in sorted(self.replay_ms.items(), key=lambda kv: kv[1]))
        why = "".join(f"; {f} not used: {reason}" for f, reason in self.skipped.items())
        return f"bucket {self.bucket}: {self.form}" + (f" ({timed})" if timed else "") + why


def prefill_forward(model: Transformer, length: int, form: str, compile_mode: str = "default",
                    backend: str = "inductor") -> Forward:
    """A bucket's forward in ``form`` (see the module docstring): logits [b, vocab] at ``last``.
    ``backend``: torch.compile's (``"eager"`` traces the same whole graph without generating code)."""
    if form == "slots":
        return lambda tokens, positions, last: model(tokens, positions, kv_len=length, last_index=last)[:, 0]
    if form != "compiled":
        raise ValueError(f"prefill form {form!r}: expected one of {PREFILL_FORMS}")
    pytorch = Slots.pytorch("compiled prefill: PyTorch's ops, fused by torch.compile")

    def forward(tokens: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        return model(tokens, positions, kv_len=length, last_index=last, slots=pytorch)[:, 0]

    # no CUDA graphs of its own ("reduce-overhead"): the bucket's graph captures the compiled kernels
    if backend != "inductor":  # a mode is inductor's option
        return torch.compile(forward, backend=backend, fullgraph=True, dynamic=False)
    return torch.compile(forward, mode=compile_mode, fullgraph=True, dynamic=False)


class _Captured:
    """One bucket's graph in one form, and its static buffers."""

    def __init__(self, model: Transformer, length: int, warmup: int, form: str = "slots",
                 compile_mode: str = "default") -> None:
        device = model.tok_embeddings.weight.device
        self.form = form
        self.tokens = torch.zeros(model.batch, length, dtype=torch.long, device=device)
        self.positions = torch.arange(length, device=device)
        self.last = torch.zeros(1, dtype=torch.long, device=device)
        # held for the graph's life: the compiled kernels the graph replays belong to it
        self.forward = prefill_forward(model, length, form, compile_mode)
        self.graph = torch.cuda.CUDAGraph()
        with _compile_limits():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # compile kernels, pick GEMM algorithms, allocate
                for _ in range(max(1, warmup)):
                    self.forward(self.tokens, self.positions, self.last)
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(self.graph):
                self.logits = self.forward(self.tokens, self.positions, self.last)  # [b, vocab], a static buffer


def _compile_limits():  # noqa: ANN202
    """Every bucket and model compiles the same ``forward`` code anew (its closure differs), and
    past dynamo's recompile limit (8) a call would silently run uncompiled: here the limit is
    raised for the capture (replays never reach dynamo) and hitting it raises, so ``auto`` says
    why the compiled form is missing instead of timing an uncompiled one."""
    return torch._dynamo.config.patch(recompile_limit=64, fail_on_recompile_limit_hit=True)


def replay_ms(graphs: dict[str, torch.cuda.CUDAGraph], calls: int = 5, rounds: int = 3) -> dict[str, float]:
    """Median replay time (ms) of each graph: ``calls`` back-to-back replays a round, the graphs
    taking turns over ``rounds`` rounds so that a clock or a neighbour's drift hits each alike."""
    found: dict[str, list[float]] = {name: [] for name in graphs}
    for graph in graphs.values():  # a first replay of each, untimed
        graph.replay()
    for _ in range(rounds):
        for name, graph in graphs.items():
            for _ in range(calls):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                graph.replay()
                end.record()
                end.synchronize()
                found[name].append(start.elapsed_time(end))
    return {name: statistics.median(times) for name, times in found.items()}


class GraphPrefill:
    """``prefill(prompt)`` -> logits [b, vocab] of the last prompt token, from a bucket's graph.

    Graphs are captured on first use of a bucket and kept (at most ``max_graphs``, least
    recently used dropped first): each holds activations for its bucket length. ``form``:
    ``"slots"``, ``"compiled"`` or ``"auto"`` (both captured, the faster kept; see the module
    docstring); ``compile_mode``: torch.compile's mode for the compiled form.
    """

    def __init__(self, model: Transformer, buckets: Sequence[int] = DEFAULT_BUCKETS, warmup: int = 2,
                 max_graphs: int = 4, form: str = "auto", compile_mode: str = "default") -> None:
        if not buckets or min(buckets) < 1:
            raise ValueError(f"prefill buckets must be positive token counts, got {list(buckets)}")
        if form not in ("auto", *PREFILL_FORMS):
            raise ValueError(f"prefill form {form!r}: expected 'auto' or one of {PREFILL_FORMS}")
        if not torch.cuda.is_available():
            raise NoGPUError("CUDA-graph prefill needs a CUDA GPU")
        self.model, self.buckets, self.warmup, self.max_graphs = model, tuple(buckets), warmup, max_graphs
        self.form, self.compile_mode = form, compile_mode
        self.graphs: OrderedDict[int, _Captured] = OrderedDict()
        self.choices: dict[int, BucketChoice] = {}

    def graph_for(self, length: int) -> _Captured:
        bucket = bucket_for(length, self.buckets)
        if bucket > self.model.max_seq:
            raise ValueError(f"a {length}-token prompt needs the {bucket}-token bucket, beyond the cache "
                             f"({self.model.max_seq} positions): set up a longer cache or smaller buckets")
        if bucket not in self.graphs:
            while len(self.graphs) >= self.max_graphs:
                self.graphs.popitem(last=False)
            with torch.no_grad():
                self.graphs[bucket] = self._capture(bucket)
        self.graphs.move_to_end(bucket)
        return self.graphs[bucket]

    def _capture(self, bucket: int) -> _Captured:
        if self.form != "auto":
            captured = _Captured(self.model, bucket, self.warmup, self.form, self.compile_mode)
            self.choices[bucket] = BucketChoice(bucket, self.form)
            return captured
        built: dict[str, _Captured] = {}
        skipped: dict[str, str] = {}
        for form in PREFILL_FORMS:
            try:
                built[form] = _Captured(self.model, bucket, self.warmup, form, self.compile_mode)
            except Exception as exc:  # noqa: BLE001 - one form failing leaves the other; the reason is kept
                if form == "slots":
                    raise  # the engine's own forward: a failure here is the engine's, not a choice
                skipped[form] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
                log.warning("prefill bucket %d: the %s form failed (%s); the slots form serves it",
                            bucket, form, skipped[form])
        times = replay_ms({form: c.graph for form, c in built.items()}) if len(built) > 1 else {}
        form = min(times, key=times.__getitem__) if times else next(iter(built))
        self.choices[bucket] = choice = BucketChoice(bucket, form, times, skipped)
        log.info("prefill %s", choice.describe())
        return built[form]  # the other form's graph and buffers are freed with it

    @torch.no_grad()
    def __call__(self, prompt: torch.Tensor) -> torch.Tensor:
        b, t = prompt.shape
        if b != self.model.batch:
            raise ValueError(f"prompt batch {b} differs from the cache's batch {self.model.batch}")
        captured = self.graph_for(t)
        captured.tokens[:, :t].copy_(prompt)
        captured.tokens[:, t:].zero_()
        captured.last.fill_(t - 1)
        captured.graph.replay()
        return captured.logits
