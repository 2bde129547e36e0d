"""RMSNorm over the last dimension: x * rsqrt(mean(x^2) + eps) * weight, fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        # Random (not ones) so that a kernel that ignores the weight fails.
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * rms * self.weight


# Default: fp32 [65536, 8192] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s
# (eager PyTorch runs ~5 kernels, ~5 ms).
batch_size = 65536
dim = 8192


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [dim]


FAMILY = "normalization"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 4096, "dim": 2048},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "narrow", "batch_size": 1031, "dim": 97, "hidden": True},
]
