"""The GPU runtime: compile CUDA C through NVRTC and launch it on PyTorch's current stream.

This is the whole API a candidate needs::

    from autotuner.runtime import compile_module
    module = compile_module(CUDA_SOURCE, defines={"BLOCK": 256})
    module.launch("my_kernel", grid=(blocks,), block=(256,), args=(x, out, n))
"""

from autotuner.runtime.compile import (
    CudaModule,
    cache_root,
    clear_memory_cache,
    compile_module,
    nvcc_ptx,
    parse_diagnostics,
)
from autotuner.runtime.launch import Kernel
from autotuner.runtime.occupancy import allow_nonportable_clusters, max_active_clusters
from autotuner.runtime.pdl import pdl_enabled, pdl_launch
from autotuner.runtime.signature import kernel_names, parse_kernels

__all__ = [
    "CudaModule",
    "Kernel",
    "cache_root",
    "clear_memory_cache",
    "compile_module",
    "kernel_names",
    "allow_nonportable_clusters",
    "max_active_clusters",
    "nvcc_ptx",
    "parse_diagnostics",
    "parse_kernels",
    "pdl_enabled",
    "pdl_launch",
]
