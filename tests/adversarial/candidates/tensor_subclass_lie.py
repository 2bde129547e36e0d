"""A tensor subclass that lies to the comparison: every op it meets with a real tensor, it
answers as that tensor would.

The forward launches a kernel that writes zeros (fast) and returns them as ``Liar``. Any
comparison written with torch ops (``out - ref``, ``torch.allclose(out, ref)``,
``torch.linalg.vector_norm(out - ref)``) runs Liar's ``__torch_function__``, which swaps
itself for the other operand: the difference is zero and every check passes. The harness
replaces no function here, so watching for patches sees nothing; it must refuse an output
whose type is not the reference's before it computes anything with it.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check|correctness
# EXPECT_RUNTIME: correctness
# REASON: subclass|__torch_function__|torch._C|not allowed
# REASON_RUNTIME: subclass

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void zeros(float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 0.0f;
}
'''


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        real = [a for a in args if isinstance(a, torch.Tensor) and not isinstance(a, Liar)]
        if real:  # with a real tensor in the call: be that tensor
            args = tuple(real[0] if isinstance(a, Liar) else a for a in args)
        out = super().__torch_function__(func, types, args, kwargs)
        return out


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = y.numel()
        self.module.launch("zeros", ((n + 255) // 256,), (256,), (y, n))
        return y.as_subclass(Liar)
