"""exec / eval: build the forbidden import at run time from a string.

eval("__import__('time')") hides the import (and the dunder) from anything that only looks
at import statements; with `time` a candidate can busy-wait, sleep the baselines or read
clocks. The static check forbids exec/eval/compile/__import__ by name; at run time the
sandbox's audit hook refuses eval/exec/compile called from the candidate's own code (the
candidate swallows the refusal and stays correct, so only the record of the attempt rejects it).
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: isolation
# REASON: eval|exec
# REASON_RUNTIME: built from a string|eval|compile

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_eval(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''

try:
    _clock = eval("__im" + "port__('ti' + 'me')")
except Exception:  # refused: carry on as an honest kernel
    _clock = None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.t0 = _clock.perf_counter() if _clock else 0.0
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_eval", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
