"""Cross-entropy loss of fp32 logits [batch, classes] against int64 class targets (mean)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, reduction="mean")


# Default: fp32 logits [4096, 128256] (a Llama-3 vocabulary) = 2.1 GB read -> ~0.7 ms at
# 3 TB/s (eager: log_softmax writes and nll re-reads the logits' size, ~6.3 GB, ~2.5 ms).
batch_size = 4096
num_classes = 128256


def get_inputs():
    logits = torch.randn(batch_size, num_classes)
    targets = torch.randint(0, num_classes, (batch_size,))
    return [logits, targets]


def get_init_inputs():
    return []


FAMILY = "loss"
DTYPE = "float32"
POLICY = "strict"
INPUT_DISTRIBUTIONS = []  # targets are class indices and must stay in [0, num_classes)
SHAPES = [
    {"name": "small", "batch_size": 256, "num_classes": 32064},
    {"name": "odd", "batch_size": 37, "num_classes": 5003, "hidden": True},
    {"name": "few_classes", "batch_size": 1031, "num_classes": 3, "hidden": True},
]
