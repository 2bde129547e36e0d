"""TF32: turn on TF32 tensor cores at import, then use cuBLAS for the (allowed) GEMM.

Under the hybrid policy torch.mm is allowed; with allow_tf32 the GEMM runs ~6x faster with
~1e-3 relative error, inside a naive 1e-2 tolerance, and if the flag is set before the
harness computes its reference, the reference is TF32 too and even a tight comparison
passes. The ReLU is a real kernel of its own. The static check forbids touching
torch.backends; with it off, the harness must see that the flags are not its defaults (and
the fp32 tolerances reject TF32 results against an fp32 reference).
"""
# TASK: tests/adversarial/tasks/gemm_relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity|correctness
# REASON: backends|tf32|assign|attribute
# REASON_RUNTIME: tf32|flag|backend|precision|tolerance|mismatch|l2

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True

SOURCE = r'''
extern "C" __global__ void relu_inplace_tf32(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(y[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, a, b):
        y = torch.mm(a, b)  # allowed by the hybrid policy, now in TF32
        n = y.numel()
        self.module.launch("relu_inplace_tf32", grid=((n + 255) // 256,), block=(256,), args=(y, n))
        return y
