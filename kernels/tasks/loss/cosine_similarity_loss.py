"""Mean of 1 - cosine similarity of rows (KernelBench level 1 #97)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, predictions, targets):
        cosine_sim = F.cosine_similarity(predictions, targets, dim=1)
        return torch.mean(1 - cosine_sim)


# Default: fp32 2 x [32768, 8192] = 2.1 GB read -> ~0.55 ms at 3.9 TB/s (eager: norms, divisions, a
# product and a row sum, each a pass).
batch_size = 32768
dim = 8192


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
    {"name": "short_rows", "batch_size": 3001, "dim": 33, "hidden": True}
]
