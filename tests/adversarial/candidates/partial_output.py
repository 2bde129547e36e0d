"""Partial output: compute only the first half of the elements.

The second half is left to stale memory (on a naive harness it is the reference's freed
output, so the comparison passes, and the kernel looks twice as fast). The poison fill makes
the unwritten half NaN.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness
# REASON: nan|poison|unwritten|not written

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_half(const float* __restrict__ x, float* __restrict__ y, long long n) {
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
        half = x.numel() // 2  # "the rest is the same anyway"
        self.module.launch("relu_half", grid=((half + 255) // 256,), block=(256,), args=(x, y, half))
        return y
