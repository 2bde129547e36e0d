"""Weights: random (the default: no download, any size), or a local Hugging Face checkpoint.

Random weights are drawn N(0, 1/fan_in) so that activations keep unit scale at every width
and the logits have a spread like a trained model's (a tiny test model is not all ties);
norm weights are 1 + 0.1 N(0, 1), so a kernel that ignores its weight is caught.

A checkpoint is a folder in the Hugging Face layout (``config.json``, ``*.safetensors``);
names are mapped onto the engine's fused matrices (q/k/v and gate/up are concatenated).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from autotuner.deploy.model_config import ModelConfig, from_hf_config
from autotuner.deploy.model import Transformer
from autotuner.deploy.slots import Slots
from autotuner.errors import WeightsError

log = logging.getLogger(__name__)


@torch.no_grad()
def init_random(model: Transformer, seed: int = 0) -> None:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for name, param in model.named_parameters():
        if name.endswith("norm"):
            values = 1.0 + 0.1 * torch.randn(param.shape, generator=gen)
        elif name.endswith("bias"):
            values = 0.1 * torch.randn(param.shape, generator=gen)
        else:
            values = torch.randn(param.shape, generator=gen) * param.shape[-1] ** -0.5
        param.copy_(values.to(param.dtype))


@torch.no_grad()
def init_random_fast(model: Transformer, seed: int = 0) -> None:
    """The same law drawn on the model's device (seconds for billions of weights on a GPU)."""
    device = model.tok_embeddings.weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    for name, param in model.named_parameters():
        param.normal_(generator=gen)
        if name.endswith("norm"):
            param.mul_(0.1).add_(1.0)
        elif name.endswith("bias"):
            param.mul_(0.1)
        else:
            param.mul_(param.shape[-1] ** -0.5)


def build_model(cfg: ModelConfig, *, dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cuda",
                checkpoint: str | Path | None = None, seed: int = 0, slots: Slots | None = None) -> Transformer:
    """A model with random weights, or those of ``checkpoint``; caches are set up by the caller."""
    with torch.device("meta"):
        model = Transformer(cfg, slots)
    model = model.to_empty(device=device).to(dtype)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    elif torch.device(device).type == "cpu":
        init_random(model, seed)
    else:
        init_random_fast(model, seed)
    return model.eval().requires_grad_(False)


def config_from_checkpoint(path: str | Path) -> ModelConfig:
    path = Path(path)
    config = path / "config.json"
    if not config.is_file():
        raise WeightsError(f"{path}: no config.json (a Hugging Face checkpoint folder has one)")
    return from_hf_config(json.loads(config.read_text()), name=path.name)


def hf_names(cfg: ModelConfig) -> dict[str, list[str]]:
    """Engine parameter -> the Hugging Face tensors it is made of (concatenated along dim 0)."""
    names: dict[str, list[str]] = {"tok_embeddings.weight": ["model.embed_tokens.weight"], "norm": ["model.norm.weight"]}
    if not cfg.tie_embeddings:
        names["output.weight"] = ["lm_head.weight"]
    for i in range(cfg.num_layers):
        hf, ours = f"model.layers.{i}", f"layers.{i}"
        attn = f"{hf}.self_attn"
        names[f"{ours}.attention_norm"] = [f"{hf}.input_layernorm.weight"]
        names[f"{ours}.ffn_norm"] = [f"{hf}.post_attention_layernorm.weight"]
        names[f"{ours}.attention.wqkv.weight"] = [f"{attn}.{p}_proj.weight" for p in "qkv"]
        if cfg.qkv_bias:
            names[f"{ours}.attention.wqkv.bias"] = [f"{attn}.{p}_proj.bias" for p in "qkv"]
        names[f"{ours}.attention.wo.weight"] = [f"{attn}.o_proj.weight"]
        names[f"{ours}.feed_forward.w_gate_up.weight"] = [f"{hf}.mlp.gate_proj.weight", f"{hf}.mlp.up_proj.weight"]
        names[f"{ours}.feed_forward.w_down.weight"] = [f"{hf}.mlp.down_proj.weight"]
    return names


def _open_tensors(path: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise WeightsError("loading a checkpoint needs the safetensors package: pip install 'autotuner[hf]'") from None
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise WeightsError(f"{path}: no *.safetensors files")
    where: dict[str, Path] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                where[key] = file
    return where


@torch.no_grad()
def load_checkpoint(model: Transformer, path: str | Path) -> None:
    """Copy a Hugging Face checkpoint's tensors into ``model`` (cast to its dtype)."""
    from safetensors import safe_open

    path = Path(path)
    where = _open_tensors(path)
    params = dict(model.named_parameters())
    mapping = hf_names(model.cfg)
    missing = sorted({n for parts in mapping.values() for n in parts} - set(where))
    if missing:
        raise WeightsError(f"{path}: {len(missing)} tensors missing, e.g. {missing[:4]}")
    handles: dict[Path, object] = {}
    try:
        for ours, parts in mapping.items():
            tensors = []
            for name in parts:
                file = where[name]
                if file not in handles:
                    handles[file] = safe_open(str(file), framework="pt").__enter__()
                tensors.append(handles[file].get_tensor(name))  # type: ignore[attr-defined]
            value = torch.cat(tensors, dim=0) if len(tensors) > 1 else tensors[0]
            target = params[ours]
            if tuple(value.shape) != tuple(target.shape):
                raise WeightsError(f"{path}: {parts} make a {tuple(value.shape)} tensor, the engine's {ours} "
                                   f"is {tuple(target.shape)} (config.json and weights disagree?)")
            target.copy_(value.to(target.dtype))
    finally:
        for handle in handles.values():
            handle.__exit__(None, None, None)  # type: ignore[attr-defined]
    unused = sorted(set(where) - {n for parts in mapping.values() for n in parts} - {"lm_head.weight"})
    if unused:
        log.warning("%s: %d tensors not used by the engine, e.g. %s", path, len(unused), unused[:3])
