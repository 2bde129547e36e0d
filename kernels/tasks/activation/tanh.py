"""Hyperbolic tangent activation on a 2-D fp32 tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


# Default: fp32 [32768, 16384] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 32768
dim = 16384


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 4096, "dim": 2048},
    {"name": "odd", "batch_size": 61, "dim": 3331, "hidden": True},
    {"name": "tail", "batch_size": 5, "dim": 40001, "hidden": True},
]
