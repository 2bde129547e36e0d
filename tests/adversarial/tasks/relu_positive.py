"""Red-team task: ReLU whose own inputs are all positive (torch.rand), so relu(x) == x on them."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


batch_size = 4096
dim = 4096


def get_inputs():
    # All in [0, 1): on this law "return the input" is exact; the evaluator's extra laws
    # ("signed", "wide") are what must catch it.
    return [torch.rand(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
INPUT_DISTRIBUTIONS = ["signed", "wide"]
SHAPES = [
    {"name": "small", "batch_size": 256, "dim": 1024},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
]
