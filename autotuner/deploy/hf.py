"""Patch a Hugging Face transformers Llama model with the archive's kernels.

Three places: ``LlamaRMSNorm.forward`` (rmsnorm slot), ``LlamaMLP.forward``
(``act_fn(gate) * up`` becomes the silu_mul slot) and ``apply_rotary_pos_emb`` (rope slot).
Only slots with a verified, re-verified kernel are patched; the others keep Hugging Face's
code, and the returned ``Patch`` says which is which.

* ``patch_llama(model, archive_or_slots)`` patches one model instance. RMSNorm and MLP get
  instance-level ``forward``s; the rotary function is a module global in transformers, so it
  is replaced by a dispatcher that uses the kernel only inside the patched model's attention
  modules (everything else calls the original).
* ``patch_llama_class(slots)`` patches the classes, before any model is created: every Llama
  model built afterwards uses the kernels. ``Patch.undo()`` restores everything.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from autotuner.deploy.slots import Slots

_ACTIVE_ROPE: contextvars.ContextVar[Slots | None] = contextvars.ContextVar("autotuner_rope_slots", default=None)
_ORIGINAL_ROPE: dict[str, Callable[..., Any]] = {}


def _modeling() -> types.ModuleType:
    try:
        from transformers.models.llama import modeling_llama
    except ImportError:
        from autotuner.errors import AutotunerError

        raise AutotunerError("the Hugging Face adapter needs transformers (pip install transformers)") from None
    return modeling_llama


@dataclass
class Patch:
    """What was patched (slot -> description) and how to undo it."""

    slots: dict[str, str] = field(default_factory=dict)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()

    def __enter__(self) -> Patch:
        return self

    def __exit__(self, *_: Any) -> None:
        self.undo()


def _norm_forward(slots: Slots) -> Callable[..., torch.Tensor]:
    def forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
        return slots.rmsnorm(hidden_states, self.weight, self.variance_epsilon)

    return forward


def _mlp_forward(slots: Slots) -> Callable[..., torch.Tensor]:
    def forward(self: Any, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_proj(x), self.up_proj(x)
        inter = gate.shape[-1]
        h = slots.silu_mul(gate.reshape(-1, inter), up.reshape(-1, inter))
        return self.down_proj(h.view(gate.shape))

    return forward


def rope_hf_layout(slots: Slots, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                   sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """apply_rotary_pos_emb's layout (q: [b, heads, t, d], cos: [b or 1, t, d]) through the rope slot."""
    b, h, t, d = q.shape
    kv = k.shape[1]
    q2 = q.transpose(1, 2).reshape(b * t, h, d)  # [b*t, heads, d]
    k2 = k.transpose(1, 2).reshape(b * t, kv, d)
    c = cos.expand(b, t, d).reshape(b * t, d)
    s = sin.expand(b, t, d).reshape(b * t, d)
    q_out, k_out = slots.rope(q2, k2, c, s)
    return q_out.view(b, t, h, d).transpose(1, 2), k_out.view(b, t, kv, d).transpose(1, 2)


def _rope_dispatcher(original: Callable[..., Any], always: Slots | None) -> Callable[..., Any]:
    def apply_rotary_pos_emb(q, k, cos, sin, *args: Any, **kwargs: Any):  # noqa: ANN001, ANN202 - HF's signature
        slots = always or _ACTIVE_ROPE.get()
        unsqueeze_dim = args[0] if args else kwargs.get("unsqueeze_dim", 1)
        if slots is None or unsqueeze_dim != 1 or q.dim() != 4 or cos.dim() != 3:
            return original(q, k, cos, sin, *args, **kwargs)
        return rope_hf_layout(slots, q, k, cos, sin)

    apply_rotary_pos_emb.autotuner_dispatcher = True  # type: ignore[attr-defined]
    return apply_rotary_pos_emb


def _slots_for(model: Any, source: Any) -> Slots:
    if isinstance(source, Slots):
        return source
    from autotuner.deploy.model_config import from_hf_config
    from autotuner.deploy.resolve import resolve_slots

    cfg = from_hf_config(model.config.to_dict(), name=type(model).__name__)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return resolve_slots(source, dtype, cfg, slots=("rmsnorm", "rope", "silu_mul"))


def patch_llama(model: Any, source: Any) -> Patch:
    """Patch one model with the kernels of ``source`` (an ``Archive``: resolved and re-verified
    here; or ``Slots`` already resolved)."""
    m = _modeling()
    slots = _slots_for(model, source)
    patch = Patch()
    counts = {"rmsnorm": 0, "silu_mul": 0, "rope": 0}
    act = getattr(model.config, "hidden_act", "silu")
    for module in model.modules():
        if isinstance(module, m.LlamaRMSNorm) and slots.bound("rmsnorm"):
            _set_forward(patch, module, _norm_forward(slots))
            counts["rmsnorm"] += 1
        elif isinstance(module, m.LlamaMLP) and slots.bound("silu_mul") and act == "silu":
            _set_forward(patch, module, _mlp_forward(slots))
            counts["silu_mul"] += 1
        elif isinstance(module, m.LlamaAttention) and slots.bound("rope"):
            _set_forward(patch, module, _with_rope(module.forward, slots), bound=False)
            counts["rope"] += 1
    if counts["rope"]:
        _install_dispatcher(m, patch, always=None)
    report = slots.report()
    for slot, n in counts.items():
        patch.slots[slot] = f"{report[slot]}: {n} modules" if n else report[slot]
    if act != "silu":
        patch.slots["silu_mul"] = f"pytorch (activation {act!r} is not SiLU)"
    return patch


def patch_llama_class(slots: Slots) -> Patch:
    """Patch the Llama classes themselves, so models created afterwards use the kernels."""
    m = _modeling()
    patch = Patch(slots=slots.report())
    for cls, slot, make in ((m.LlamaRMSNorm, "rmsnorm", _norm_forward), (m.LlamaMLP, "silu_mul", _mlp_forward)):
        if slots.bound(slot):
            original = cls.forward
            cls.forward = make(slots)
            patch._undo.append(lambda cls=cls, original=original: setattr(cls, "forward", original))
    if slots.bound("rope"):
        _install_dispatcher(m, patch, always=slots)
    return patch


def _set_forward(patch: Patch, module: Any, fn: Callable[..., Any], bound: bool = True) -> None:
    module.forward = types.MethodType(fn, module) if bound else fn
    patch._undo.append(lambda: module.__dict__.pop("forward", None))


def _with_rope(forward: Callable[..., Any], slots: Slots) -> Callable[..., Any]:
    def attention_forward(*args: Any, **kwargs: Any) -> Any:
        token = _ACTIVE_ROPE.set(slots)
        try:
            return forward(*args, **kwargs)
        finally:
            _ACTIVE_ROPE.reset(token)

    return attention_forward


def _install_dispatcher(m: types.ModuleType, patch: Patch, always: Slots | None) -> None:
    """Replace the module-global rotary function (undo restores what was there: undo in reverse order)."""
    current = m.apply_rotary_pos_emb
    if not getattr(current, "autotuner_dispatcher", False):
        _ORIGINAL_ROPE["llama"] = current
    elif always is None:
        return  # a dispatcher is already in place; it serves every patched model
    m.apply_rotary_pos_emb = _rope_dispatcher(_ORIGINAL_ROPE["llama"], always)
    patch._undo.append(lambda: setattr(m, "apply_rotary_pos_emb", current))
