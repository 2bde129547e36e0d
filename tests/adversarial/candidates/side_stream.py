"""Side stream: launch the kernel on a torch.cuda.Stream so the timer stops before it ends.

A naive harness records its end event on the default stream right after forward returns;
the real work is still running on the side stream, so the measured time is only the launch
overhead. (The harness synchronizes before comparing, so the values are right.) Streams pass
the static check (their use is visible at run time): the profiler sees a kernel on a stream
that is not the current one.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: integrity
# REASON: stream
# TIME: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_side(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.side = torch.cuda.Stream()

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.side.wait_stream(torch.cuda.current_stream())  # see the inputs, but nobody waits for us
        with torch.cuda.stream(self.side):  # autotuner.runtime launches on the current stream: this one
            self.module.launch("relu_side", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
