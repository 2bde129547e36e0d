"""Honest style: a Triton @triton.jit kernel (the candidate's own kernel, launched on PyTorch's stream)."""
# TASK: tests/adversarial/tasks/relu.py

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_triton_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        relu_triton_kernel[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
