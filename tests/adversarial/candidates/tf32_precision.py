"""TF32 through torch.set_float32_matmul_precision("high"), set inside forward.

The other spelling of the tf32 trick: no assignment statement, just a torch.set_* call, done
lazily in forward so that a harness which checks the flags only after loading the candidate
misses it. Static check: torch.set_* calls are forbidden; with it off, the flag check after
forward (or the fp32 tolerances) must reject it.
"""
# TASK: tests/adversarial/tasks/gemm_relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity|correctness
# REASON: set_float32_matmul_precision|set_|precision
# REASON_RUNTIME: tf32|flag|backend|precision|tolerance|mismatch|l2

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_inplace_prec(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(y[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, a, b):
        torch.set_float32_matmul_precision("high")
        y = torch.mm(a, b)
        n = y.numel()
        self.module.launch("relu_inplace_prec", grid=((n + 255) // 256,), block=(256,), args=(y, n))
        return y
