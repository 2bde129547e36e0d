"""Sum over the last dimension of a 2-D fp32 tensor with a few very long rows (keepdim=False)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=-1)


# Default: fp32 [8, 2**25] = 1 GiB read, 32 bytes written -> ~0.36 ms at 3 TB/s. A block per
# row would use 8 blocks of a 132-SM GPU.
batch_size = 8
dim = 2**25


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 4, "dim": 2**17},
    {"name": "odd", "batch_size": 3, "dim": 100003, "hidden": True},
    {"name": "one_row", "batch_size": 1, "dim": 77777, "hidden": True},
]
