"""Inclusive prefix sum (cumsum) along the last dimension of a 2-D fp32 tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=-1)


# Default: fp32 [16384, 16384] = 1 GiB in + 1 GiB out = 2.1 GB moved -> ~0.7 ms at 3 TB/s
# (eager's scan kernel is well below bandwidth: ~2-3 ms).
batch_size = 16384
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "scan"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 2, "dim": 100003, "hidden": True},
]
