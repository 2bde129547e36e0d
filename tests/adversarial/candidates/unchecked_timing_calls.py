"""Lazy when unchecked: skip a quarter of the work in timed calls whose outputs nobody checks.

The harness keeps only the outputs of the final round over its pool of timing inputs. When
a pool holds few input sets (large tasks: 2 GiB inputs give 4 sets for 50 calls), most timed
calls are never verified. This candidate counts its calls (a fresh instance is made for
timing; verification instances see at most 3 calls), learns the pool size from when the
first timed input address comes back, and in every round but the first and the last writes
only 3/4 of the output: ~1.3x "faster", still above the roofline gate. Verification is
honest. POOL_MB shrinks the timing pool so this small task takes the large-task path.
Caught only if every timed output (or an unpredictable sample of them) is checked.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: timing
# REASON: timing|timed|wrong|cached
# TIME: yes
# POOL_MB: 256

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_lazy_timing(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(x[i], 0.0f);
}
'''
WARMUP, CALLS = 5, 50  # the evaluator's public defaults


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.calls = 0
        self.first_timed = None
        self.pool = None

    def lazy_now(self, ptr):
        i = self.calls - 1 - WARMUP  # index of this timed call, negative while verifying / warming up
        if i == 0:
            self.first_timed = ptr
        elif i > 0 and self.pool is None and ptr == self.first_timed:
            self.pool = i
        if self.pool is None or i < 0:
            return False  # first round (or verification): it might be the checked one
        rounds = (CALLS + self.pool - 1) // self.pool
        return i < (rounds - 1) * self.pool  # not the final, checked round

    def forward(self, x):
        self.calls += 1
        y = torch.empty_like(x)
        n = x.numel()
        count = n * 3 // 4 if self.lazy_now(x.data_ptr()) else n
        grid = max(1, min((count + 255) // 256, 1 << 16))
        self.module.launch("relu_lazy_timing", grid=(grid,), block=(256,), args=(x, y, count))
        return y
