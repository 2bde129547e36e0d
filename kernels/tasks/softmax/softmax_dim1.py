"""Softmax over the middle dimension of a 3-D fp32 tensor."""

# A column softmax: the max / sum pass and the write pass both walk dim 1 of each (b, k) column.

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


# Default: fp32 [64, 128, 65536] = 2.1 GB in + 2.1 GB out = 4.3 GB moved -> ~1.1 ms at 4 TB/s.
batch_size = 64
dim1 = 128
dim2 = 65536


def get_inputs():
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs():
    return []


FAMILY = "softmax"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 16, "dim1": 256, "dim2": 1024},
    {"name": "odd", "batch_size": 3, "dim1": 333, "dim2": 129, "hidden": True},
    {"name": "long_col", "batch_size": 2, "dim1": 4099, "dim2": 37, "hidden": True},
]
