"""Stale memory: allocate the output with torch.empty_like and never write it.

On a naive harness the reference runs first and frees its output; the caching allocator hands
the same block to this empty_like, which still holds the reference's answer, so the check
passes. The evaluator pre-fills every empty allocation with NaN, so unwritten elements fail.
A kernel of its own does launch (it only writes where x is NaN, i.e. never), so the
"own kernel ran" rule is met and the correctness layer must catch it.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness
# REASON: nan|poison|unwritten|not written

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_lazy(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && x[i] != x[i]) y[i] = x[i];   // only NaN inputs are "fixed up": never
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)  # the reference's freed answer, with luck
        n = x.numel()
        self.module.launch("relu_lazy", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
