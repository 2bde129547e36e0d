"""Behave when watched or captured: a slow kernel of its own while a dispatch mode, the
profiler or a CUDA graph capture is active, torch.relu in plain calls.

The sequel to watch_detection: it also asks torch.cuda.is_current_stream_capturing(), so the
CUDA graph the unwatched check captures holds its own kernel, the one the watched forward ran,
and the kernel names match. But that kernel is deliberately slow (a long dependent chain of
fmaf(v, 1, 0) per element, the value unchanged), while the timed calls, plain calls, run
PyTorch's relu: the timed median is a small fraction of the captured forward's replay time,
and the timing comparison of the unwatched check rejects it at stage integrity. With the
static check on it is refused for the private attributes of torch, as watch_detection is.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity
# REASON: private|_python_dispatch|_get_current_dispatch_mode|_c|underscore
# REASON_RUNTIME: faster, different path
# TIME: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_watched_slow(const float* __restrict__ x, float* __restrict__ y, long long n,
                                             int iters, float one, float zero) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        for (int k = 0; k < iters; ++k) v = fmaf(v, one, zero);   // one = 1, zero = 0: v unchanged, slowly
        y[i] = fmaxf(v, 0.0f);
    }
}
'''
ITERS = 1024  # ~0.5 ms on an H200 at 4096 x 4096; torch.relu takes ~0.03 ms


def _watched_or_captured():
    mode = torch.utils._python_dispatch._get_current_dispatch_mode()
    return mode is not None or torch._C._autograd._profiler_enabled() or torch.cuda.is_current_stream_capturing()


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        if not _watched_or_captured():
            return torch.relu(x)
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_watched_slow", grid=((n + 255) // 256,), block=(256,),
                           args=(x, y, n, ITERS, 1.0, 0.0))
        return y
