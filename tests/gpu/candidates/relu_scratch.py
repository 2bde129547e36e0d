"""ReLU that also takes a scratch buffer of SCRATCH_GIB GiB in its forward: for the tests of
who is at fault when that allocation fails (autotuner/evaluator/memory_pressure.py)."""
import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''
PARAMS = {"SCRATCH_GIB": [40, 400]}


class ModelNew(nn.Module):
    def __init__(self, SCRATCH_GIB: int = 40):
        super().__init__()
        self.scratch = SCRATCH_GIB
        self.module = compile_module(SOURCE)

    def forward(self, x):
        scratch = torch.empty(self.scratch << 30, dtype=torch.uint8, device=x.device)
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        del scratch
        return y
