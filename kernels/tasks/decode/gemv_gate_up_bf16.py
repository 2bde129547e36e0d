"""Decode fused gate/up projection as a matrix-vector product: y = x W^T (+ b) in bf16, batch 1 to 8."""

# nn.Linear at decode time: a few activation rows against a weight matrix read once per token,
# so the time is the weight's bytes over the memory bandwidth. Default: Llama-3.2-1B's w_gate_up, 2048 -> 16384 (67 MB).

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * in_features ** -0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [batch, in_features] -> [batch, out_features]; cuBLAS accumulates in fp32, rounds once
        return F.linear(x, self.weight, self.bias)


batch_size = 1
in_features = 2048
out_features = 16384
bias = False


def get_inputs():
    return [torch.randn(batch_size, in_features, dtype=torch.bfloat16)]


def get_init_inputs():
    return [in_features, out_features, bias]


def bytes_moved(inputs, outputs):
    """The weight (and bias) once, the activations in, the outputs out."""
    (x,) = inputs
    weight = in_features * out_features + (out_features if bias else 0)
    return 2 * (weight + x.numel() + outputs.numel())


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "qwen2.5_1.5b", "in_features": 1536, "out_features": 17920},
    {"name": "odd", "batch_size": 5, "in_features": 1544, "out_features": 333, "hidden": True},
]
