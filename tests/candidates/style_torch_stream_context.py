"""Honest style: autotuner.runtime launch inside `with torch.cuda.stream(torch.cuda.current_stream())`."""
# TASK: tests/adversarial/tasks/relu.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_torch_stream_ctx_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        grid = max(1, min((n + 255) // 256, 65535))
        with torch.cuda.stream(torch.cuda.current_stream()):
            self.module.launch("relu_torch_stream_ctx_f32", grid=(grid,), block=(256,), args=(x, y, n))
        return y
