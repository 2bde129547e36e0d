"""Red-team task: relu(a @ b) in fp32 under the hybrid policy (cuBLAS GEMM allowed; TF32 not)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.relu(a @ b)


M = 1024
K = 1024
N = 1024


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []


FAMILY = "gemm"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "M": 256, "K": 512, "N": 256},
    {"name": "odd", "M": 257, "K": 333, "N": 129, "hidden": True},
]
