"""Huber loss (delta=1.0, mean reduction, scalar output) between two fp32 tensors."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(predictions, targets, reduction="mean", delta=self.delta)


# Default: fp32 2 x [10240, 32768] = 2.7 GB read, 4 bytes written -> ~0.9 ms at 3 TB/s
# (eager ~2 ms).
batch_size = 10240
dim = 32768
delta = 1.0


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return [delta]


FAMILY = "loss"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 1280, "dim": 4096},
    {"name": "odd", "batch_size": 37, "dim": 5003, "delta": 0.5, "hidden": True},
    {"name": "flat", "batch_size": 1, "dim": 777781, "hidden": True},
]
