"""Decode MLP down projection with the residual add: residual + (x W^T) * multiplier, in bf16."""

# A Llama-family sublayer's output at decode time, as Hugging Face rounds it: the projection
# in bf16 (fp32 accumulation), scaled where the model has a residual multiplier (Granite),
# then added to the residual stream in bf16. Default: Llama-3.2-1B's w_down, 8192 -> 2048 (33.5 MB).

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, multiplier: float):
        super().__init__()
        self.multiplier = multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * in_features ** -0.5)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        # x: [batch, in_features], residual: [batch, out_features] -> the new residual stream
        a = F.linear(x, self.weight)
        if self.multiplier != 1.0:
            a = a * self.multiplier
        return residual + a


batch_size = 1
in_features = 8192
out_features = 2048
multiplier = 1.0


def get_inputs():
    return [torch.randn(batch_size, in_features, dtype=torch.bfloat16),
            torch.randn(batch_size, out_features, dtype=torch.bfloat16)]


def get_init_inputs():
    return [in_features, out_features, multiplier]


def bytes_moved(inputs, outputs):
    """The weight once, x and the residual in, the new residual out."""
    x, residual = inputs
    return 2 * (in_features * out_features + x.numel() + residual.numel() + outputs.numel())


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "qwen2.5_1.5b", "in_features": 8960, "out_features": 1536},
    {"name": "granite_odd", "batch_size": 2, "in_features": 4099, "out_features": 333, "multiplier": 0.22, "hidden": True},
]
