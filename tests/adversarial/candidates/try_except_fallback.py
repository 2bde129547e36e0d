"""try/except fallback: try the own kernel, and on any error quietly return PyTorch's result.

The launch has a bug (one argument missing), so it raises every time and the except branch
returns torch.relu(x): the candidate "passes" while its kernel never runs. The static check
forbids try/except; with it off, the dispatch-mode hook sees aten.relu.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity
# REASON: try|except
# REASON_RUNTIME: relu|kernel

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_try(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        try:
            self.module.launch("relu_try", grid=((n + 255) // 256,), block=(256,), args=(x, y))  # n forgotten
        except Exception:
            return torch.relu(x)
        return y
