"""Rotary embedding tables, computed as Hugging Face does (fp32 angles, cast to the model dtype)."""

from __future__ import annotations

import math

import torch

from autotuner.deploy.model_config import ModelConfig


def inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """[head_dim / 2] fp32 frequencies, with Llama 3's rescaling where the model has it."""
    d = cfg.head_dim
    freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(torch.float32) / d))
    s = cfg.rope_scaling
    if s is None:
        return freq
    low_wavelen = s.original_max_position_embeddings / s.low_freq_factor
    high_wavelen = s.original_max_position_embeddings / s.high_freq_factor
    wavelen = 2 * math.pi / freq
    scaled = torch.where(wavelen > low_wavelen, freq / s.factor, freq)
    smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)
    smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_tables(cfg: ModelConfig, max_seq: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin: [max_seq, head_dim] fp32 (cast to the model dtype where they are used)."""
    positions = torch.arange(max_seq, dtype=torch.float32, device=device)
    freqs = positions[:, None] * inv_freq(cfg).to(device)[None, :]  # [max_seq, head_dim / 2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()
