"""Behave only when watched: own kernel while a dispatch mode or the profiler is active,
PyTorch otherwise.

torch.utils._python_dispatch._get_current_dispatch_mode() and
torch._C._autograd._profiler_enabled() tell the candidate when the integrity hooks are on;
the honest kernel runs then, and torch.relu runs in the timed calls, which only check
values. (With a slow kernel and a faster PyTorch path, the recorded time is PyTorch's.)
No import and no dunder is needed: only private attributes of torch, which the static check
refuses (rule "private"). With the static check off, the integrity hooks see only the honest
kernel; the unwatched check (evaluator/unwatched.py) captures one forward in a CUDA graph with
nothing watching, replays it under the profiler, and finds PyTorch's relu kernel, which the
watched forward never ran: rejected at stage integrity.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity
# REASON: private|_python_dispatch|_get_current_dispatch_mode|_c|underscore
# REASON_RUNTIME: different kernels when not watched
# TIME: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_watched(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


def _watched():
    mode = torch.utils._python_dispatch._get_current_dispatch_mode()
    return mode is not None or torch._C._autograd._profiler_enabled()


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        if not _watched():
            return torch.relu(x)
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_watched", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
