"""os / subprocess: a correct kernel whose module also reaches the file system and processes.

Here it only reads an environment variable and runs `true`, but the same imports could read
the harness's files, write to the archive, or lock GPU clocks before timing. The static check
allows only the imports the candidate format needs; at run time nothing here is wrong with
the values, so there is no run-time half of this test.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: n/a
# REASON: import|os|subprocess

import os
import subprocess

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_os(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = int(os.environ.get("RELU_BLOCK", "256"))
        subprocess.run(["true"], check=False)  # e.g. "nvidia-smi --lock-gpu-clocks"
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_os", grid=((n + self.block - 1) // self.block,), block=(self.block,), args=(x, y, n))
        return y
