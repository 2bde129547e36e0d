"""Reference peek: find the reference's output among live tensors (gc) and copy it.

If the harness computes the reference in the same process before calling the candidate, a
tensor of the output's shape is alive somewhere: gc.get_objects() finds it and a copy kernel
of its own "computes" the answer at memcpy speed. The static check forbids gc; with it off,
the evaluator runs the candidate before the reference of each trial, so the newest such
tensor is stale (another trial's) or an input, and the values are wrong.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: correctness
# REASON: gc|import
# REASON_RUNTIME: mismatch|tolerance|wrong|l2|race|differ|nan|error

import gc

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_copy_peek(const float* __restrict__ src, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = src[i];
}
extern "C" __global__ void relu_zero_peek(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 0.0f;
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        grid = ((n + 255) // 256,)
        found = [
            t for t in gc.get_objects()
            if isinstance(t, torch.Tensor) and t is not x and t is not y and t.is_cuda
            and t.shape == x.shape and t.dtype == x.dtype and t.is_contiguous()
        ]
        if found:
            self.module.launch("relu_copy_peek", grid=grid, block=(256,), args=(found[-1], y, n))
        else:
            self.module.launch("relu_zero_peek", grid=grid, block=(256,), args=(y, n))
        return y
