"""Linear layer (x @ W^T + b) followed by SiLU, bf16 (a Llama-70B-sized MLP projection)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.linear(x))


# Default: [8192, 8192] @ [8192, 28672] = 2*8192*8192*28672 = 3.85 TFLOP -> ~5.5 ms at
# 700 TFLOP/s (bf16); 1.1 GB moved.
batch_size = 8192
in_features = 8192
out_features = 28672


def get_inputs():
    return [torch.randn(batch_size, in_features, dtype=torch.bfloat16)]


def get_init_inputs():
    return [in_features, out_features]


FAMILY = "gemm"
DTYPE = "bfloat16"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 2048, "in_features": 2048, "out_features": 7168},
    {"name": "odd", "batch_size": 37, "in_features": 301, "out_features": 523, "hidden": True},
    {"name": "decode", "batch_size": 1, "in_features": 1000, "out_features": 1537, "hidden": True},
]
