"""Illegal address: an indexing bug writes a terabyte past the end of the output.

The CUDA context is poisoned (cudaErrorIllegalAddress is sticky): in a harness that runs
candidates in its own process, every later candidate fails too. The evaluator must report it
as this candidate's launch error or crash and carry on in a fresh process.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: launch|crash
# REASON: illegal|memory|address|cuda error

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_oob(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    // bug: a byte offset (1 << 40) added to an element index
    if (i < n) y[i + (1LL << 40)] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_oob", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
