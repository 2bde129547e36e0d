"""Red-team task: sum over the last dimension of a 2-D fp32 tensor (races, hard-coded sizes)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=-1)


batch_size = 4096
dim = 4096


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 512, "dim": 4096},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
]
