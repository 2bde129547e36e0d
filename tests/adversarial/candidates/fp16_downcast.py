"""fp16 downcast: a real GELU kernel that rounds its input and output through fp16.

Half the register pressure and fast fp16 math; the error is ~5e-4 relative, far inside a
naive atol = rtol = 1e-2 check, so it looks like a correct, fast kernel. The task is fp32:
the evaluator's fp32 tolerances (rtol 1e-4 and a relative-L2 bound of 2e-5) reject it.
Rounding is done with PTX cvt, so no fp16 header is needed.
"""
# TASK: tests/adversarial/tasks/gelu.py
# EXPECT: correctness
# REASON: tolerance|mismatch|l2|error|precision

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
__device__ __forceinline__ float through_half(float v) {
    unsigned short h;
    float r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    asm("cvt.f32.f16 %0, %1;" : "=f"(r) : "h"(h));
    return r;
}

extern "C" __global__ void gelu_half(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = through_half(x[i]);
        float g = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        y[i] = through_half(g);
    }
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("gelu_half", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
