"""Triplet margin loss (p=2, mean) of anchor / positive / negative rows (KernelBench level 1 #99)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin)


# Default: fp32 3 x [24576, 8192] = 2.4 GB read -> ~0.6 ms at 3.9 TB/s (eager: two pairwise_distance
# passes, each with a temporary).
batch_size = 24576
dim = 8192
margin = 1.0


def get_inputs():
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return [margin]


FAMILY = "loss"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 640, "dim": 8192},
    {"name": "odd", "batch_size": 37, "dim": 5003, "margin": 0.5, "hidden": True},
    {"name": "short_rows", "batch_size": 3001, "dim": 33, "hidden": True}
]
