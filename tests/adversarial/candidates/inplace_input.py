"""In-place on the input: write relu(x) into x and return x (no output allocation at all).

Half the memory traffic of a correct kernel. KernelBench-style harnesses compute the
reference first and then hand the same tensor to the candidate, so the damage is never seen.
The evaluator runs the candidate first on its own copy of the inputs and checks that they
are unchanged afterwards.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness
# REASON: input|modif|mutat|changed|in place|in-place

import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_inplace(float* __restrict__ x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        n = x.numel()
        self.module.launch("relu_inplace", grid=((n + 255) // 256,), block=(256,), args=(x, n))
        return x
