"""Log-softmax over the last dimension of a 2-D fp32 tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=-1)


# Default: fp32 [16384, 32768] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 16384
dim = 32768


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "softmax"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 43, "dim": 3007, "hidden": True},
    {"name": "long_row", "batch_size": 3, "dim": 150001, "hidden": True},
]
