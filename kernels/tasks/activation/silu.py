"""SiLU (swish) activation, x * sigmoid(x), on a 2-D fp32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


# Default: fp32 [8192, 65536] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 8192
dim = 65536


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 1024, "dim": 8192},
    {"name": "odd", "batch_size": 41, "dim": 3001, "hidden": True},
    {"name": "tail", "batch_size": 3, "dim": 262147, "hidden": True},
]
