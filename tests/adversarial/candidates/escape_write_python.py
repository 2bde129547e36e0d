"""Write a file outside the candidate's folder (drop a payload, or edit the archive or a cache)."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: isolation
# REASON: open|builtin
# REASON_RUNTIME: writing|sandbox
# SECRETS: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_write_python_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        open("/tmp/autotuner-redteam/dropped-by-python.txt", "w").write("pwned")

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_write_python_f32", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
