"""Red team for TIMING = "graph": correct whenever it runs eagerly, but while a CUDA graph is
being captured it hands back the output it computed for the same input address before and
launches nothing, so every replay of the timing graph costs nothing. Caught only by the
replay after the inputs were redrawn in place (tests/gpu/test_graph_timed_eval.py)."""
import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.seen = {}

    def forward(self, x):
        if torch.cuda.is_current_stream_capturing() and x.data_ptr() in self.seen:
            return self.seen[x.data_ptr()]
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        self.seen[x.data_ptr()] = y
        return y
