"""Programmatic dependent launch on the GPU: a PDL-launched kernel really starts before the one
ahead of it ends (its code before ``griddepcontrol.wait`` overlaps), on a stream and inside a
captured CUDA graph, and does not without the attribute. Timestamps are the GPU's global timer.
"""

from __future__ import annotations

import pytest
import torch

from autotuner.runtime import compile_module, pdl_enabled, pdl_launch

pytestmark = [pytest.mark.gpu]

SOURCE = r'''
__device__ __forceinline__ unsigned long long now() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
// The kernel ahead: lets dependents launch at once, then busies itself for `ns`, then stamps its end.
extern "C" __global__ void ahead(unsigned long long* stamps, long long ns) {
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    const unsigned long long t0 = now();
    while (now() - t0 < (unsigned long long)ns) { }
    __syncthreads();
    if (threadIdx.x == 0) atomicMax(stamps + 0, now());
}
// The dependent kernel: stamps its start before the wait, and after it.
extern "C" __global__ void behind(unsigned long long* stamps) {
    if (threadIdx.x == 0) atomicMin(stamps + 1, now());
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (threadIdx.x == 0) atomicMin(stamps + 2, now());
}
'''


def _stamps() -> torch.Tensor:
    s = torch.zeros(3, dtype=torch.int64, device="cuda")
    s[1:] = torch.iinfo(torch.int64).max
    return s


def _pair(module, stamps: torch.Tensor, pdl: bool, ns: int) -> None:  # noqa: ANN001
    with pdl_enabled(pdl):
        pdl_launch(module, "ahead", grid=(4,), block=(64,), args=(stamps, ns))
        pdl_launch(module, "behind", grid=(4,), block=(64,), args=(stamps,))


@pytest.mark.parametrize("graph", [False, True], ids=["stream", "graph"])
def test_dependent_kernel_starts_before_the_one_ahead_ends(graph: bool) -> None:
    module = compile_module(SOURCE)
    # Launched from Python one by one, the dependent's host-side launch takes tens of
    # microseconds: the kernel ahead runs long enough (2 ms) for it to arrive; in a graph, 20 us.
    ns = 20_000 if graph else 2_000_000
    _pair(module, _stamps(), True, 1_000)  # load the module and the driver entry point first
    torch.cuda.synchronize()
    for pdl in (True, False):
        stamps = _stamps()
        if graph:
            g = torch.cuda.CUDAGraph()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                _pair(module, _stamps(), pdl, ns)  # warm-up: load the module outside the capture
            torch.cuda.current_stream().wait_stream(side)
            with torch.cuda.graph(g):
                _pair(module, stamps, pdl, ns)
            stamps.copy_(_stamps())
            g.replay()
        else:
            _pair(module, stamps, pdl, ns)
        torch.cuda.synchronize()
        end_ahead, start_behind, after_wait = (int(v) for v in stamps.cpu())
        # the wait always returns after the kernel ahead completed
        assert after_wait >= end_ahead
        if pdl:  # overlap: the dependent started well inside the time the kernel ahead ran
            assert start_behind < end_ahead - 5_000, (start_behind, end_ahead)
        else:
            assert start_behind >= end_ahead, (start_behind, end_ahead)
