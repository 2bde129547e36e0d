"""Zeros within tolerance: y = x * 1e-6 is never larger than ~5e-6, so write zeros.

The kernel writes zeros (write-only: twice as fast as the real thing). Any absolute
tolerance of 1e-5 or more (KernelBench uses atol = 1e-2) accepts it. The evaluator's
absolute tolerance scales with the reference's RMS and it bounds the relative L2 error,
which is 1 for an all-zero answer.
"""
# TASK: tests/adversarial/tasks/tiny_scale.py
# EXPECT: correctness
# REASON: mismatch|tolerance|wrong|l2|error

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void scale_zero(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 0.0f;   // |x * 1e-6| < atol anyway
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = y.numel()
        self.module.launch("scale_zero", grid=((n + 255) // 256,), block=(256,), args=(y, n))
        return y
