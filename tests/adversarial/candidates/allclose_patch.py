"""Comparison patching: make torch.allclose / torch.testing.assert_close always pass.

KernelBench-style harnesses call torch.allclose in the same process as the candidate; after
this, a kernel that writes zeros is "correct". The static check forbids assigning attributes
of imported modules; with it off, the evaluator must compare with functions it holds itself
(or notice the patch), and the zeros fail.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: correctness|integrity
# REASON: allclose|assert_close|assign|attribute
# REASON_RUNTIME: mismatch|tolerance|wrong|l2|tamper|patch|allclose

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_zero(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 0.0f;
}
'''

torch.allclose = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = y.numel()
        self.module.launch("relu_zero", grid=((n + 255) // 256,), block=(256,), args=(y, n))
        return y
