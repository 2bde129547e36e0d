"""Sum over the last dimension of a 2-D fp32 tensor (keepdim=False)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=-1)


# Default: fp32 [12288, 57344] = 2.8 GB read, 48 KiB written -> ~0.95 ms at 3 TB/s
# (eager reaches ~85% of bandwidth: ~1.1 ms).
batch_size = 12288
dim = 57344


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 1536, "dim": 7168},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 3, "dim": 300007, "hidden": True},
]
