"""Mean squared error between two fp32 tensors (mean reduction, scalar output)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(predictions, targets, reduction="mean")


# Default: fp32 2 x [5120, 65536] = 2.7 GB read, 4 bytes written -> ~0.9 ms at 3 TB/s
# (eager writes and re-reads an elementwise temporary: ~5.4 GB, ~2 ms).
batch_size = 5120
dim = 65536


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "loss"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 640, "dim": 8192},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "flat", "batch_size": 1, "dim": 1048583, "hidden": True},
]
