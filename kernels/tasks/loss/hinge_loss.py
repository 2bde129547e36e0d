"""Hinge loss mean(clamp(1 - p * t, min=0)) with +-1 targets of the predictions' shape (KernelBench #100)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        return torch.mean(torch.clamp(1 - predictions * targets, min=0))


# Default: fp32 2 x [32768, 8192] = 2.1 GB read -> ~0.55 ms at 3.9 TB/s.
batch_size = 32768
dim = 8192


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randint(0, 2, (batch_size, dim)).float() * 2 - 1]


def get_init_inputs():
    return []


FAMILY = "loss"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 640, "dim": 8192},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "flat", "batch_size": 1, "dim": 300007, "hidden": True}
]
