"""The deploy bench: tokens per second of the engine four ways, on the same weights and prompt.

Modes: ``eager`` (PyTorch slots, decode launched op by op), ``tuned`` (the archive's
re-verified kernels in the slots), ``tuned+graph`` (the same, decode replayed from a CUDA
graph and prefill from one graph per prompt bucket: ``prefill.py``), ``compile`` (PyTorch slots under ``torch.compile(mode="reduce-overhead")``: the
baseline to beat), ``fused+graph`` / ``fused+graph+pdl`` (the fused decode path of
``fused.py`` in one CUDA graph, without and with programmatic dependent launch; prefill as
``tuned+graph``: each bucket's graph runs the slot kernels or the compiled PyTorch forward,
whichever replays faster, ``prefill.py``) and, on request, ``fused`` (the fused path launched from Python). Per mode: prefill, decode and total tok/s, the one-time cost (the first
run's time minus a warm run's: NVRTC compiles, graph capture, torch.compile), and decode's
fraction of the memory-bandwidth bound (weight bytes per step over the measured copy
bandwidth, divided by the measured step time).

Decode is greedy in every mode, each at its best: the graphed modes capture the argmax and
feed the token and position back on the device (the fused path's head kernel computes the
argmax itself), ``compile`` compiles the argmax with the step (as gpt-fast compiles its
sampling), the eager modes launch it after the step.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from autotuner.deploy.model_config import ModelConfig
from autotuner.deploy.generate import GraphDecoder, GreedyStep, Step, eager_step, generate, greedy_from, static_step
from autotuner.deploy.model import Transformer
from autotuner.deploy.slots import Slots

log = logging.getLogger(__name__)
MODES = ("eager", "tuned", "tuned+graph", "compile", "fused+graph", "fused+graph+pdl")
# Fused decode (autotuner/deploy/fused.py): the fused slots, one CUDA graph; "+pdl": kernels that
# support it launched with programmatic dependent launch. "fused" (launched op by op) on request.
FUSED_MODES = ("fused", "fused+graph", "fused+graph+pdl")
FUSED_GRAPH_MODES = FUSED_MODES[1:]  # the fused path in a CUDA graph (greedy steps unrollable)
ALL_MODES = MODES + ("fused",)
PREFILL_CALLS = 5  # prefill calls timed per run (median)


@dataclass(frozen=True)
class BenchRow:
    model: str
    prompt_len: int
    batch: int
    mode: str
    prefill_tok_s: float
    decode_tok_s: float
    total_tok_s: float
    one_time_ms: float
    decode_step_ms: float
    bandwidth_fraction: float | None  # weight-bytes bound / measured step time
    prefill_form: str = ""  # graphed modes: what the prompt's bucket graph runs, with each form's replay time


@dataclass
class BenchReport:
    gpu: str
    copy_gbps: float | None
    rows: list[BenchRow] = field(default_factory=list)
    slots: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> slot -> description
    weight_bytes: dict[str, int] = field(default_factory=dict)
    reverify_s: dict[str, float] = field(default_factory=dict)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any]) -> float:
    """Wall milliseconds of ``fn`` with the device drained before and after."""
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    return (time.perf_counter() - start) * 1e3


class _Mode:
    """How one mode prefills and decodes; ``step`` is built lazily (graph capture, compile)."""

    def __init__(self, model: Transformer, slots: Slots, name: str, unroll: int = 1,
                 prefill_form: str = "auto") -> None:
        self.model, self.slots, self.name = model, slots, name
        self.unroll = unroll if name in FUSED_GRAPH_MODES else 1  # greedy steps per replay
        self.prefill_form_wanted = prefill_form  # the graphed modes' bucket graphs (prefill.PREFILL_FORMS or auto)
        self._step: Step | None = None
        self._greedy: GreedyStep | None = None
        self._prefill: Callable[..., torch.Tensor] | None = None

    def activate(self) -> None:
        self.model.slots = self.slots

    def prefill_form(self, prompt_len: int) -> str:
        """What the graphed prefill runs for a prompt of ``prompt_len`` tokens ("" elsewhere)."""
        from autotuner.deploy.prefill import GraphPrefill, bucket_for

        if not isinstance(self._prefill, GraphPrefill):
            return ""
        choice = self._prefill.choices.get(bucket_for(prompt_len, self._prefill.buckets))
        return choice.describe() if choice else ""

    def prefill_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        if "graph" in self.name:  # graphed modes prefill from a CUDA graph per prompt bucket too
            if self._prefill is None:
                from autotuner.deploy.prefill import GraphPrefill

                self._prefill = GraphPrefill(self.model, form=self.prefill_form_wanted)
            graphed = self._prefill
            return lambda prompt: graphed(prompt)[:, None]  # [b, 1, vocab], as the other modes give
        if self.name != "compile":
            return lambda prompt: self.model(prompt, torch.arange(prompt.shape[1], device=prompt.device),
                                             kv_len=prompt.shape[1], last_only=True)
        if self._prefill is None:
            self._prefill = torch.compile(self.model.forward, mode="reduce-overhead", fullgraph=True, dynamic=False)
        fn = self._prefill
        return lambda prompt: fn(prompt, torch.arange(prompt.shape[1], device=prompt.device), None, True)

    def step(self) -> Step:
        if self._step is None:
            if self.name in FUSED_MODES:
                from autotuner.deploy.fused import make_step

                self._step = make_step(self.model, graph="graph" in self.name, pdl=self.name.endswith("+pdl"))
            elif self.name == "tuned+graph":
                self._step = GraphDecoder(self.model).step
            elif self.name == "compile":
                compiled = torch.compile(self.model.forward, mode="reduce-overhead", fullgraph=True, dynamic=False)
                self._step = static_step(self.model, compiled)
            else:
                self._step = eager_step(self.model)
        return self._step

    def greedy_step(self) -> GreedyStep:
        """The mode's greedy decode step: (token [b, 1], position) -> the next tokens [b, n] (n = 1,
        or ``unroll`` for the fused graphs)."""
        if self._greedy is None:
            if self.name in FUSED_GRAPH_MODES:
                from autotuner.deploy.fused import make_greedy_step

                self._greedy = make_greedy_step(self.model, graph=True, pdl=self.name.endswith("+pdl"),
                                                unroll=self.unroll)
            elif self.name == "tuned+graph":
                self._greedy = GraphDecoder(self.model, greedy=True).greedy_step
            elif self.name == "compile":
                model = self.model

                def pick(token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
                    return model.forward(token, pos)[:, -1].argmax(dim=-1, keepdim=True)

                compiled = torch.compile(pick, mode="reduce-overhead", fullgraph=True, dynamic=False)
                # clone: the compiled graph's output buffer is overwritten by its next replay (gpt-fast clones too)
                self._greedy = static_step(self.model, lambda token, pos: compiled(token, pos).clone()[:, None])
            else:
                self._greedy = greedy_from(self.step())
        return self._greedy


def _check_unroll(steps: int, unroll: int) -> None:
    if unroll < 1 or steps % unroll:
        raise ValueError(f"unroll={unroll}: must be a positive divisor of the {steps} decode steps "
                         "(a graph replay decodes that many tokens)")


@torch.no_grad()
def _run(mode: _Mode, prompt: torch.Tensor, steps: int) -> tuple[float, float]:
    """(prefill ms, decode ms for ``steps`` tokens) of one greedy generation."""
    _check_unroll(steps, mode.unroll)
    model = mode.model
    prefill = mode.prefill_fn()
    t = prompt.shape[1]
    logits_box: list[torch.Tensor] = []
    # the median of a few back-to-back calls (each writes the same cache rows): one call of a few
    # ms read 148k to 185k tok/s for compile's 512-token prefill across runs of one day
    prefill_ms = statistics.median(_timed(lambda: logits_box.append(prefill(prompt)[:, -1].clone()))
                                   for _ in range(PREFILL_CALLS))
    step = mode.greedy_step()

    def decode() -> None:
        token = logits_box[-1].argmax(dim=-1, keepdim=True)
        i = 0
        while i < steps:
            chosen = step(token, t + i)  # [b, n]: the next n tokens
            token = chosen[:, -1:]
            i += chosen.shape[1]

    decode_ms = _timed(decode)
    del model
    return prefill_ms, decode_ms


def bench_mode(mode: _Mode, prompt: torch.Tensor, steps: int, repeats: int) -> tuple[float, float, float]:
    """(median prefill ms, median decode ms, one-time ms) over ``repeats`` warm runs."""
    mode.activate()
    first_start = time.perf_counter()
    first = _run(mode, prompt, steps)
    first_ms = (time.perf_counter() - first_start) * 1e3
    runs = [_run(mode, prompt, steps) for _ in range(repeats)]
    prefill_ms = statistics.median(r[0] for r in runs)
    decode_ms = statistics.median(r[1] for r in runs)
    del first
    return prefill_ms, decode_ms, max(0.0, first_ms - prefill_ms - decode_ms)


def cache_positions(tokens: int) -> int:
    """Static-cache length for ``tokens`` positions: rounded up to 128 (aligned rows for the kernels)."""
    return -(-tokens // 128) * 128


def bench_model(model: Transformer, tuned: Slots, prompt_lens: Sequence[int], steps: int, batch: int,
                repeats: int, copy_gbps: float | None, modes: Sequence[str] = MODES,
                progress: Callable[[str], None] | None = None, unroll: int = 1,
                prefill_form: str = "auto") -> list[BenchRow]:
    """Every mode at every prompt length on one model (whose caches cover the longest run).
    ``unroll``: greedy steps per graph replay of the fused graphs (a divisor of ``steps``; the
    mode is then named e.g. ``fused+graph+pdl x4``); ``prefill_form``: what the graphed modes'
    prefill graphs run (``prefill.GraphPrefill``'s ``form``)."""
    _check_unroll(steps, unroll)
    cfg: ModelConfig = model.cfg
    device = model.tok_embeddings.weight.device
    model.setup_caches(batch, cache_positions(max(prompt_lens) + steps + 1))
    bound_ms = model.weight_bytes() / (copy_gbps * 1e9) * 1e3 if copy_gbps else None
    pytorch = Slots.pytorch("bench: PyTorch baseline")
    rows = []
    for name in modes:
        mode = _Mode(model, tuned if name.startswith(("tuned", "fused")) else pytorch, name, unroll=unroll,
                     prefill_form=prefill_form)
        label = name if mode.unroll == 1 else f"{name} x{mode.unroll}"
        for t in prompt_lens:
            if progress:
                progress(f"{cfg.name} prompt {t}: {name}")
            gen = torch.Generator(device="cpu").manual_seed(t)
            prompt = torch.randint(0, cfg.vocab_size, (batch, t), generator=gen).to(device)
            prefill_ms, decode_ms, once_ms = bench_mode(mode, prompt, steps, repeats)
            step_ms = decode_ms / steps
            rows.append(BenchRow(
                model=cfg.name, prompt_len=t, batch=batch, mode=label,
                prefill_tok_s=batch * t / (prefill_ms / 1e3), decode_tok_s=batch * steps / (decode_ms / 1e3),
                total_tok_s=batch * (t + steps) / ((prefill_ms + decode_ms) / 1e3), one_time_ms=once_ms,
                decode_step_ms=step_ms, bandwidth_fraction=bound_ms / step_ms if bound_ms else None,
                prefill_form=mode.prefill_form(t),
            ))  # fmt: skip
        del mode
        if name == "compile":
            torch._dynamo.reset()
        gc.collect()
    model.slots = tuned
    return rows


def _divergence(ref: Any, out: Any) -> tuple[int | None, float, float | None]:
    """(first step whose greedy token differs, or None; max |logit error| before it; the
    reference's top-2 logit margin at that step: a divergence inside the error is a near-tie)."""
    same = (ref.tokens == out.tokens).all(dim=0)
    first = None if bool(same.all()) else int((~same).nonzero()[0, 0])
    upto = len(ref.logits) if first is None else first
    err = max((float((a - b).abs().max()) for a, b in zip(ref.logits[:upto], out.logits[:upto])), default=0.0)
    margin = None
    if first is not None and first < len(ref.logits):
        top2 = ref.logits[first].topk(2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
    return first, err, margin


def check_parity(model: Transformer, tuned: Slots, prompt_len: int = 32, steps: int = 64) -> dict[str, Any]:
    """Greedy tokens and logits of the tuned path (eager and CUDA-graph decode) against pure PyTorch."""
    device = model.tok_embeddings.weight.device
    gen = torch.Generator(device="cpu").manual_seed(1234)
    prompt = torch.randint(0, model.cfg.vocab_size, (model.batch, prompt_len), generator=gen).to(device)
    model.slots = Slots.pytorch()
    ref = generate(model, prompt, steps, keep_logits=True)
    model.slots = tuned
    report: dict[str, Any] = {"steps": steps}
    paths: dict[str, Step] = {"tuned": eager_step(model)}
    if device.type == "cuda":
        paths["tuned+graph"] = GraphDecoder(model).step
    for name, step in paths.items():
        first, err, margin = _divergence(ref, generate(model, prompt, steps, step=step, keep_logits=True))
        report[name] = {"same_tokens": first is None, "first_divergence": first, "max_logit_err": err,
                        "margin_at_divergence": margin}
    return report


def parity_line(model: str, path: str, steps: int, result: dict[str, Any]) -> str:
    """One line of ``check_parity``'s report; a divergence says whether it fell on a near-tie."""
    if result["same_tokens"]:
        verdict = "identical"
    else:
        verdict = f"DIFFER, first different token at step {result['first_divergence']}"
        margin = result.get("margin_at_divergence")
        if margin is not None:
            tie = ": a near-tie within the error" if margin <= result["max_logit_err"] else ""
            verdict += f" (the reference's top two logits there were {margin:.4g} apart{tie})"
    return (f"parity {model} {path} vs pure PyTorch: {steps} greedy tokens {verdict}; "
            f"max |logit error| {result['max_logit_err']:.4g}")


@torch.no_grad()
def _forced(model: Transformer, prompt: torch.Tensor, tokens: torch.Tensor, step: Step,
            prefill_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Logits [b, vocab] (fp32) at each step, feeding ``tokens`` [b, steps] (teacher forcing);
    the first from ``prefill_fn`` (a mode's own prefill) where given, else the eager prefill."""
    from autotuner.deploy.generate import prefill

    t = prompt.shape[1]
    out = [(prefill_fn(prompt) if prefill_fn is not None else prefill(model, prompt)).float()]
    for i in range(tokens.shape[1] - 1):
        out.append(step(tokens[:, i : i + 1], t + i).float().clone())
    return out


@torch.no_grad()
def check_parity_fp32(model: Transformer, tuned: Slots, paths: Sequence[str] = FUSED_GRAPH_MODES,
                      prompt_len: int = 32, steps: int = 32) -> dict[str, Any]:
    """The issue's parity contract, against an fp32 run of the same weights (PyTorch slots):

    * each path's logits, fed the fp32 run's greedy tokens, are no further from the fp32 logits
      than PyTorch bf16's are (``max_err`` beside ``bf16_max_err``; ``ok_error``: within 1.25x
      plus one bf16 step of the largest logit);
    * its own greedy tokens equal the fp32 run's until the first step whose fp32 top-two margin
      is below the error measured there (``ok_tokens``).
    The graphed paths prefill as the bench runs them (``GraphPrefill``: a bucket's graph in the
    faster form), so their first logits and the cache their steps read come from it.
    """
    import copy

    from autotuner.deploy.prefill import bucket_for

    device = model.tok_embeddings.weight.device
    gen = torch.Generator(device="cpu").manual_seed(4321)
    prompt = torch.randint(0, model.cfg.vocab_size, (model.batch, prompt_len), generator=gen).to(device)
    # the copy takes the weights, not the bound kernels: their launchers hold per-thread state
    # (and compiled modules) that cannot be copied, and the reference runs PyTorch anyway
    ref_model = copy.deepcopy(model, memo={id(model.slots): Slots.pytorch("fp32 reference")}).float()
    ref_model.setup_caches(model.batch, model.max_seq)
    ref = generate(ref_model, prompt, steps, keep_logits=True)
    del ref_model
    tokens = ref.tokens
    ref_logits = [x.float() for x in ref.logits]
    steps_fns: dict[str, tuple[Slots, Callable[[], Step]]] = {"bf16": (Slots.pytorch("bf16 reference"), lambda: eager_step(model))}
    for name in paths:
        if name in FUSED_MODES:
            from autotuner.deploy.fused import make_step

            graph, pdl = "graph" in name, name.endswith("+pdl")
            steps_fns[name] = (tuned, lambda graph=graph, pdl=pdl: make_step(model, graph=graph, pdl=pdl))
        elif name == "tuned+graph":
            steps_fns[name] = (tuned, lambda: GraphDecoder(model).step)
        else:
            steps_fns[name] = (tuned, lambda: eager_step(model))
    report: dict[str, Any] = {"steps": steps}
    saved = model.slots
    graphed: Any = None  # the graphed modes' prefill (one per bucket, shared by them), as the bench runs it
    for name, (slots, make) in steps_fns.items():
        model.slots = slots
        prefill_fn = None
        if device.type == "cuda" and "graph" in name:
            if graphed is None:
                from autotuner.deploy.prefill import GraphPrefill

                graphed = GraphPrefill(model)
            prefill_fn = graphed
        got = _forced(model, prompt, tokens, make(), prefill_fn)
        errs = [float((a - b).abs().max()) for a, b in zip(got, ref_logits)]
        mine = torch.stack([g.argmax(-1) for g in got], dim=1)  # [b, steps]: its own greedy choice each step
        same = (mine == tokens).all(dim=0)
        first = None if bool(same.all()) else int((~same).nonzero()[0, 0])
        margin = None
        if first is not None:
            top2 = ref_logits[first].topk(2, dim=-1).values
            margin = float((top2[:, 0] - top2[:, 1]).min())
        report[name] = {"max_err": max(errs), "first_divergence": first, "margin_at_divergence": margin,
                        "err_at_divergence": errs[first] if first is not None else None,
                        "prefill": graphed.choices[bucket_for(prompt_len, graphed.buckets)].describe()
                        if prefill_fn is not None else "eager"}
    model.slots = saved
    base = report["bf16"]["max_err"]
    scale = max(float(x.abs().max()) for x in ref_logits)
    for name in steps_fns:
        r = report[name]
        r["ok_error"] = r["max_err"] <= 1.25 * base + scale * 2.0**-8
        r["ok_tokens"] = r["first_divergence"] is None or r["margin_at_divergence"] <= 2 * max(r["err_at_divergence"], base)
    return report


def parity_fp32_line(model: str, path: str, result: dict[str, Any], base: float) -> str:
    r = result
    tokens = ("greedy tokens = fp32's" if r["first_divergence"] is None else
              f"first token differing from fp32's at step {r['first_divergence']} (fp32 top-two margin "
              f"{r['margin_at_divergence']:.4g}, error there {r['err_at_divergence']:.4g})")
    ok = "OK" if r["ok_error"] and r["ok_tokens"] else "FAIL"
    prefill = f"; prefill: {r['prefill']}" if r.get("prefill", "eager") != "eager" else ""
    return (f"parity-fp32 {model} {path}: max |logit - fp32| {r['max_err']:.4g} (PyTorch bf16: {base:.4g}); "
            f"{tokens}: {ok}{prefill}")
