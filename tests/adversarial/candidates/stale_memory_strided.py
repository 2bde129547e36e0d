"""Stale memory through another allocation op: torch.empty_strided / Tensor.new_empty.

Same trick as stale_memory, but the output comes from empty_strided, to check that the
poison fill covers every empty-allocation op and not only empty / empty_like. If it is not
poisoned, the block still holds whatever was there (zeros or an old buffer) and the values
are wrong, so it must fail correctness either way.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness
# REASON: nan|poison|unwritten|not written|mismatch|tolerance

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_lazy_strided(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && x[i] != x[i]) y[i] = x[i];   // never writes finite inputs
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
        n = x.numel()
        self.module.launch("relu_lazy_strided", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
