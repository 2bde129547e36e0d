"""LayerNorm over the last dimension with affine weight and bias (nn.LayerNorm), fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-5, elementwise_affine=True)
        # Non-trivial affine parameters, so that a kernel that ignores them fails.
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.1 * torch.randn(dim))
            self.norm.bias.copy_(0.1 * torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


# Default: fp32 [65536, 8192] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s
# (eager's fused layer_norm kernel ~1.7 ms).
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
    {"name": "small", "batch_size": 8192, "dim": 1024},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "narrow", "batch_size": 1029, "dim": 99, "hidden": True},
]
