"""Log-sum-exp over the last dimension of a 2-D fp32 tensor (keepdim=False)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(x, dim=-1)


# Default: fp32 [8192, 65536] = 2.1 GB read, 32 KiB written -> ~0.7 ms at 3 TB/s
# (eager: amax pass + exp/sum pass + more, ~2.5 ms).
batch_size = 8192
dim = 65536


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 1024, "dim": 8192},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 4, "dim": 131101, "hidden": True},
]
