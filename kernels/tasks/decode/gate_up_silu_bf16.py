"""Decode MLP front: RMSNorm, fused gate/up projection and SiLU(gate) * up, in bf16."""

# At decode time, as Hugging Face computes it: h = RMSNorm(x) (fp32 statistics, cast, times the
# weight), gate and up from one [2 * intermediate, hidden] matrix (bf16 outputs), then
# SiLU(gate) * up in bf16. Default: Llama-3.2-1B (2048 -> 2 x 8192, 67 MB of weights).

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, hidden: int, intermediate: int, eps: float):
        super().__init__()
        self.intermediate, self.eps = intermediate, eps
        self.norm_weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden))
        self.weight = nn.Parameter(torch.randn(2 * intermediate, hidden) * hidden ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [batch, hidden] -> [batch, intermediate]
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = self.norm_weight * h.to(x.dtype)
        gate, up = F.linear(h, self.weight).split(self.intermediate, dim=-1)
        return F.silu(gate) * up


batch_size = 1
hidden_size = 2048
intermediate = 8192
eps = 1e-5


def get_inputs():
    return [torch.randn(batch_size, hidden_size, dtype=torch.bfloat16)]


def get_init_inputs():
    return [hidden_size, intermediate, eps]


def bytes_moved(inputs, outputs):
    """The weights once, x in, the activation out."""
    (x,) = inputs
    return 2 * (2 * intermediate * hidden_size + hidden_size + x.numel() + outputs.numel())


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "qwen2.5_1.5b", "hidden_size": 1536, "intermediate": 8960, "eps": 1e-6},
    {"name": "odd", "batch_size": 3, "hidden_size": 1003, "intermediate": 517, "hidden": True},
    {"name": "batch8", "batch_size": 8, "hidden_size": 2048, "intermediate": 300, "hidden": True},
]
