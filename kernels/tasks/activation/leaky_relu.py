"""Leaky ReLU, x if x > 0 else negative_slope * x, on a 2-D fp32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, negative_slope=self.negative_slope)


# Default: fp32 [8192, 65536] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 8192
dim = 65536
negative_slope = 0.05


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [negative_slope]


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 1024, "dim": 8192},
    # A different slope too: a kernel that hard-codes 0.05 fails here.
    {"name": "odd", "batch_size": 37, "dim": 5003, "negative_slope": 0.2, "hidden": True},
    {"name": "tail", "batch_size": 3, "dim": 77777, "hidden": True},
]
