"""How many thread-block clusters of a kernel the GPU keeps resident at once.

A persistent kernel (a grid of exactly the resident clusters, each looping over its share of
the work) must not launch more clusters than fit: the ones that do not fit wait for a whole
cluster to finish and then do their full share, which doubles the time. Clusters are placed
within a GPC, so the count is not SMs x blocks per SM / cluster size; the driver's
``cuOccupancyMaxActiveClusters`` knows it (from ``libcuda.so.1`` via ctypes, as ``pdl``).
"""

from __future__ import annotations

import ctypes
from typing import Any

from autotuner.runtime import dry
from autotuner.runtime.pdl import CUlaunchConfig, launch_config

_query: list[Any] = []
_set_attribute: list[Any] = []
_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14  # CUfunction_attribute (cuda.h)


def _driver_query() -> Any:
    if not _query:
        fn = ctypes.CDLL("libcuda.so.1").cuOccupancyMaxActiveClusters
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_void_p, ctypes.POINTER(CUlaunchConfig)]
        _query.append(fn)
    return _query[0]


def max_active_clusters(kernel: Any, block: int, shared_mem: int, cluster: int) -> int | None:
    """Clusters of ``cluster`` blocks of ``block`` threads and ``shared_mem`` dynamic shared
    bytes each that ``kernel`` (a ``runtime.Kernel`` compiled with ``__cluster_dims__``) keeps
    resident on the current device; None when the driver cannot say (no GPU, an emulator, a
    dry run's stand-in kernel)."""
    kernel = dry.resolve(kernel)
    try:
        function = kernel.function
        handle = int(getattr(function, "kernel", function).ptr)
        config, _attrs = launch_config((cluster,), (block,), shared_mem, 0, False)
        count = ctypes.c_int(0)
        err = _driver_query()(ctypes.byref(count), ctypes.c_void_p(handle), ctypes.byref(config))
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    return count.value if err == 0 and count.value > 0 else None


def allow_nonportable_clusters(kernel: Any) -> bool | None:
    """Let ``kernel`` launch in clusters of more than 8 blocks (16 on an H100 / H200: a row's
    slices spread over twice the SMs, so each holds half). True when the driver took it, False
    when it refused (the GPU has no such clusters: launch something else), None when there is
    no driver function to ask (an emulator, a dry run's stand-in kernel)."""
    kernel = dry.resolve(kernel)
    try:
        function = kernel.function
        handle = int(getattr(function, "kernel", function).ptr)
    except (AttributeError, TypeError, ValueError):
        return None
    try:
        if not _set_attribute:
            fn = ctypes.CDLL("libcuda.so.1").cuFuncSetAttribute
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
            _set_attribute.append(fn)
        err = _set_attribute[0](ctypes.c_void_p(handle), _NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
    except OSError:
        return None
    return err == 0
