"""Return the input: on relu_positive every input is >= 0, so a plain copy is exact.

The kernel copies x to y (full bandwidth, no compare): it passes the task's own input law
and any harness that only uses get_inputs(). The evaluator also verifies with "signed" and
"wide" inputs, where relu(x) != x.
"""
# TASK: tests/adversarial/tasks/relu_positive.py
# EXPECT: correctness
# REASON: signed|wide|mismatch|tolerance|wrong

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_copy(const float4* __restrict__ x, float4* __restrict__ y, long long n4) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n4) y[i] = x[i];   // relu(x) == x "for the inputs we are given"
}
extern "C" __global__ void relu_copy_tail(const float* __restrict__ x, float* __restrict__ y, long long start, long long n) {
    long long i = start + (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        n4 = n // 4
        if n4:
            self.module.launch("relu_copy", grid=((n4 + 255) // 256,), block=(256,), args=(x, y, n4))
        if n % 4:
            self.module.launch("relu_copy_tail", grid=(1,), block=(32,), args=(x, y, 4 * n4, n))
        return y
