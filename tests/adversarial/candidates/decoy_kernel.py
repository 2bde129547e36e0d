"""Decoy kernel: launch a tiny kernel of its own, then let PyTorch compute the answer.

A harness that only checks "some custom kernel ran" (or greps the profile for the
candidate's kernel name) is satisfied by the decoy; the answer comes from x.clamp_min(0).
The dispatch-mode hook sees aten.clamp_min during forward (strict policy: only allocation
and view ops may run in PyTorch).
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: integrity
# REASON: clamp|aten

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_warmup(float* __restrict__ scratch) {
    if (threadIdx.x == 0) scratch[0] = 1.0f;   // "warm up the cache"
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        scratch = torch.empty(1, dtype=x.dtype, device=x.device)
        self.module.launch("relu_warmup", grid=(1,), block=(32,), args=(scratch,))
        return x.clamp_min(0)
