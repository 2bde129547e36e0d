"""The fused decode path: one kernel per projection, the ops around it folded in.

A decode step of the op-by-op path runs, per layer, a GEMM for q/k/v, rope, the cache
writes, attention, a GEMM for the output, the residual add and norm, a GEMM for gate/up,
SiLU·mul, a GEMM for down and another residual add and norm: about a dozen kernels and
their gaps for four weight reads. Here a layer is five kernels:

    qkv_rope_append   RMSNorm(residual) -> q/k/v -> rotary (q, k) -> k, v into the caches
    attention_decode  q against the caches (the existing slot)
    o_residual        residual + o-projection(attention)
                      (or both in one: attention_o_residual, where that slot is bound)
    gate_up_silu      RMSNorm(residual) -> gate/up -> SiLU(gate) * up
    down_residual     residual + down-projection(act)

and the step ends with ``lm_head_argmax`` (final RMSNorm, the head, the greedy token). Each
is a slot (``slots.FUSED_SLOTS``): a verified kernel where the archive has one, else the same
arithmetic through the op-by-op slots, so the path runs everywhere and computes what
``Transformer.forward`` computes (the residual stream is kept un-normalized and each norm is
applied where it is used, as the fused kernels do; the values are the same).

``fused_step`` / ``FusedGraphDecoder`` decode with it; in the graph, kernels that support it
are launched with programmatic dependent launch when ``pdl`` is on (their weight prefetch
overlaps the previous kernel; see ``autotuner.runtime.pdl``).

Cross-kernel prefetch (``prefetch``, off by default): each kernel is told which weights the next
weight-streaming kernel reads, and prefetches (up to half the L2 of) them as its own warps
finish, meant to keep DRAM busy through each kernel's tail, the launch gap and the next one's
ramp. A hint only: no value changes. Measured on an H200 (Llama-3.2-1B step,
scripts/decode_step_sweep.py, two runs) it costs 8-25% (1.043 -> 1.299 ms a step with PDL):
the prefetched lines compete with the streaming kernel and are partly evicted before use. Fewer
hints did not help either (2026-12-03, interleaved step A/B, ``prefetch`` naming slots): only the
attention kernel's (gate/up rows), 0.913 ms against 0.862 without hints, 0.888 issued before its
wait (the attention seed's PFEARLY), where DRAM is otherwise idle; Qwen2.5-1.5B and Granite-3.2-2B
alike. PDL with each kernel's first weights loaded into registers before its
``griddepcontrol.wait`` is what helps.

Early epilogue inputs: under PDL a kernel may read, before its wait, what kernels before its
predecessor wrote, once that predecessor waits before it lets its successor start (then they have
all completed). ``Slots`` tracks this per call (``Slots.settled``); the O and down projections read
their residual, and q/k/v (from the second layer on: the step's input kernel lets the first one
start before it waits) its position and rotary rows, before the wait, taking those L2 round trips
off the chain that runs after each kernel boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch

from autotuner.deploy.generate import GraphDecoder, GreedyStep, Step
from autotuner.deploy.model import Transformer
from autotuner.deploy.slots import Prefetch
from autotuner.deploy.step_io import embed_and_lengths, feed_back


PrefetchSlots = bool | Collection[str]  # every slot's prefetch hints (True), none, or the named slots'


def rope_tables_model_dtype(model: Transformer) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary tables in the model dtype, [max_seq, head_dim] (what ``forward`` indexes and casts)."""
    dtype = model.tok_embeddings.weight.dtype
    cached = getattr(model, "_fused_tables", None)
    if cached is None or cached[0].shape[0] != model.rope_cos.shape[0] or cached[0].device != model.rope_cos.device:
        cached = (model.rope_cos.to(dtype).contiguous(), model.rope_sin.to(dtype).contiguous())
        model._fused_tables = cached
    return cached


def prefetch_plan(model: Transformer, l2_bytes: int) -> list[dict[str, Prefetch]]:
    """Per layer, per fused slot: the ranges the next weight-streaming kernel reads, each kernel
    of a step naming at most half the L2 (prefetching more would evict what it brought in)."""
    cap = max(0, l2_bytes // 2)

    def head(t: torch.Tensor, share: int = 1) -> tuple[torch.Tensor, int]:
        return t, min(t.numel() * t.element_size(), cap // share)

    layers = list(model.layers)
    out_w = model.tok_embeddings.weight if model.output is None else model.output.weight
    plan = []
    for i, layer in enumerate(layers):
        attn, ffn = layer.attention, layer.feed_forward
        gate_up = ffn.w_gate_up.weight
        inter = gate_up.shape[0] // 2
        halves = (head(gate_up[:inter], 2), head(gate_up[inter:], 2))  # SiLU's tasks read gate and up rows together
        after_down = layers[i + 1].attention.wqkv.weight if i + 1 < len(layers) else out_w
        plan.append({"qkv_rope_append": (head(attn.wo.weight),), "attention_decode": halves, "o_residual": halves,
                     "attention_o_residual": halves,
                     "gate_up_silu": (head(ffn.w_down.weight),), "down_residual": (head(after_down),)})
    if layers:
        plan[-1]["lm_head_argmax"] = (head(layers[0].attention.wqkv.weight),)  # the next step's first kernel
    return plan


def _l2_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))


@torch.no_grad()
def fused_forward(model: Transformer, tokens: torch.Tensor, input_pos: torch.Tensor,
                  prefetch: PrefetchSlots = False, chained: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One decode step. tokens: [b, 1] int64; input_pos: [1] int64 on the device ->
    (logits [b, vocab] in the model dtype, greedy token [b] int64). ``prefetch``: True, every
    slot's cross-kernel hints (``prefetch_plan``); a collection of slot names, only theirs. ``chained``: under PDL, the
    step's input kernel is a programmatic dependent of the kernel before it (not for the first
    kernel of a graph, which has none)."""
    from autotuner.runtime.pdl import is_enabled, pdl_enabled

    cfg, slots = model.cfg, model.slots
    b, t = tokens.shape
    assert t == 1, "the fused path decodes one token per sequence"
    assert model.kv_caches_ready(), "call Transformer.setup_caches first"
    cos, sin = rope_tables_model_dtype(model)
    # x [b, hidden] (the token's embedding row, scaled) and cache_len [b]: one kernel on a GPU
    with pdl_enabled(is_enabled() and chained):
        x, cache_len = embed_and_lengths(tokens, input_pos, model.tok_embeddings.weight, cfg.embedding_multiplier)
    slots.after_foreign_kernel(waits_before_trigger=False)  # it lets the first projection start before its wait
    eps, mult = cfg.rms_norm_eps, cfg.residual_multiplier
    residual = x
    plan = prefetch_plan(model, _l2_bytes(x.device)) if prefetch else [{} for _ in model.layers]
    if prefetch and prefetch is not True:  # only the named slots' hints
        plan = [{slot: hint for slot, hint in hints.items() if slot in prefetch} for hints in plan]
    last: Prefetch = ()
    for layer, hints in zip(model.layers, plan):
        attn, ffn = layer.attention, layer.feed_forward
        cache = attn.kv_cache
        q = slots.qkv_rope_append(residual, layer.attention_norm, attn.wqkv.weight, attn.wqkv.bias, cos, sin,
                                  cache.k_cache, cache.v_cache, input_pos, cfg.num_heads, cfg.num_kv_heads,
                                  cfg.head_dim, eps, prefetch=hints.get("qkv_rope_append", ()))
        if slots.bound("attention_o_residual"):
            residual = slots.attention_o_residual(q, cache.k_cache, cache.v_cache, cache_len, cfg.attention_scale,
                                                  residual, attn.wo.weight, mult,
                                                  prefetch=hints.get("attention_o_residual", ()))
        else:
            y = slots.attention_decode(q, cache.k_cache, cache.v_cache, cache_len, cfg.attention_scale,
                                       prefetch=hints.get("attention_decode", ()))  # [b, h, d]
            residual = slots.o_residual(y.reshape(b, cfg.q_size), residual, attn.wo.weight, mult,
                                        prefetch=hints.get("o_residual", ()))
        act = slots.gate_up_silu(residual, layer.ffn_norm, ffn.w_gate_up.weight, eps,
                                 prefetch=hints.get("gate_up_silu", ()))
        residual = slots.down_residual(act, residual, ffn.w_down.weight, mult, prefetch=hints.get("down_residual", ()))
        last = hints.get("lm_head_argmax", last)
    head = model.tok_embeddings.weight if model.output is None else model.output.weight
    return slots.lm_head_argmax(residual, model.norm, head, eps, cfg.logits_scaling, prefetch=last)


def fused_step(model: Transformer, prefetch: PrefetchSlots = False) -> Step:
    """Eager decode through the fused path (each kernel launched from Python)."""
    buffers: dict[torch.device, torch.Tensor] = {}

    @torch.no_grad()
    def step(token: torch.Tensor, position: int) -> torch.Tensor:
        pos = buffers.setdefault(token.device, torch.zeros(1, dtype=torch.long, device=token.device))
        pos.fill_(position)
        return fused_forward(model, token, pos, prefetch)[0]

    return step


class FusedGraphDecoder(GraphDecoder):
    """The fused step captured in one CUDA graph; ``pdl`` launches the kernels that support it
    with programmatic dependent launch (captured as programmatic edges). Greedy: the head
    kernel's own argmax is the token fed back (no second pass over the logits), by
    ``step_io``'s kernel; ``unroll`` steps per replay (``GraphDecoder``)."""

    def __init__(self, model: Transformer, pdl: bool = False, warmup: int = 3, prefetch: PrefetchSlots = False,
                 greedy: bool = False, unroll: int = 1) -> None:
        self.token_out: torch.Tensor | None = None

        def forward(tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
            logits, token = fused_forward(model, tokens, pos, prefetch, chained=self.capturing_step > 0)
            self.token_out = token
            return logits

        super().__init__(model, warmup=warmup, forward=forward, pdl=pdl, greedy=greedy,
                         pick=lambda logits: self.token_out, unroll=unroll)

    def feed_back(self, chosen: torch.Tensor, index: int) -> None:
        feed_back(chosen, self.history, index, self.pos)


def make_step(model: Transformer, graph: bool, pdl: bool = False,
              prefetch: PrefetchSlots = False) -> Callable[[torch.Tensor, int], torch.Tensor]:
    return FusedGraphDecoder(model, pdl=pdl, prefetch=prefetch).step if graph else fused_step(model, prefetch)


def make_greedy_step(model: Transformer, graph: bool, pdl: bool = False, prefetch: PrefetchSlots = False,
                     unroll: int = 1) -> GreedyStep:
    """Greedy decoding on the fused path: in a graph, the head kernel's argmax fed back on the
    device (``unroll`` steps a replay: the step returns [b, unroll] tokens); launched from
    Python, the same token taken from the head kernel."""
    if graph:
        return FusedGraphDecoder(model, pdl=pdl, prefetch=prefetch, greedy=True, unroll=unroll).greedy_step
    buffers: dict[torch.device, torch.Tensor] = {}

    @torch.no_grad()
    def greedy(token: torch.Tensor, position: int) -> torch.Tensor:
        pos = buffers.setdefault(token.device, torch.zeros(1, dtype=torch.long, device=token.device))
        pos.fill_(position)
        return fused_forward(model, token, pos, prefetch)[1].view(-1, 1)

    return greedy
