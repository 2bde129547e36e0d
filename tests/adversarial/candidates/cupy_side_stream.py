"""Side stream through CuPy: a cupy.RawKernel launched on a non-blocking cupy.cuda.Stream.

Same trick as side_stream, for candidates that use CuPy directly instead of
autotuner.runtime. The stream is non-blocking, so it does not even synchronize with the
legacy default stream. The static check allows CuPy streams (honest code uses them to launch
on PyTorch's stream); the profiler sees the kernel on a stream that is not the current one.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: integrity
# REASON: stream
# TIME: yes

import cupy
import numpy as np
import torch
import torch.nn as nn

SOURCE = r'''
extern "C" __global__ void relu_cupy_side(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = cupy.RawKernel(SOURCE, "relu_cupy_side")
        self.side = cupy.cuda.Stream(non_blocking=True)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        args = (np.uint64(x.data_ptr()), np.uint64(y.data_ptr()), np.int64(n))
        torch.cuda.current_stream().synchronize()  # inputs (and y's allocation) ready; nobody waits for us
        self.kernel(((n + 255) // 256,), (256,), args, stream=self.side)
        return y
