"""Mean over the first dimension of a 2-D fp32 tensor (keepdim=False)."""

# Few columns and a long reduced dim: the column kernels split it across warps and blocks.

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=0)


# Default: fp32 [131072, 4096] = 2.1 GB read, 16 KiB written -> ~0.55 ms at 4 TB/s.
batch_size = 131072
dim = 4096


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 16384, "dim": 1024},
    {"name": "odd", "batch_size": 20011, "dim": 13, "hidden": True},
    {"name": "short_wide", "batch_size": 3, "dim": 100003, "hidden": True},
]
