"""Index of the maximum over the last dimension of a 3-D fp32 tensor (int64 output)."""


import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.argmax(x, dim=2)


# Default: fp32 [64, 4096, 2047] = 2.1 GB read, 1 MB of int64 written -> ~0.55 ms at 4 TB/s.
batch_size = 64
dim1 = 4096
dim2 = 2047


def get_inputs():
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 16, "dim1": 1024, "dim2": 1023},
    {"name": "odd", "batch_size": 7, "dim1": 129, "dim2": 333, "hidden": True},
    {"name": "long_row", "batch_size": 1, "dim1": 3, "dim2": 150001, "hidden": True},
]
