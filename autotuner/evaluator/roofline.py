"""The hardware floor: no honest kernel moves bytes faster than the GPU's memory, or does
matrix arithmetic faster than its matrix units.

Peaks are measured on the GPU itself (a large device-to-device copy; large fp32 and bf16
matrix products through cuBLAS) and cached per GPU, driver and torch version. A task's
bytes are the unique storage of its inputs, weights and outputs (each read or written
once) unless the task declares ``bytes_moved``; its FLOPs are counted by PyTorch's flop
counter (matmul and convolution) unless it declares ``flops``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from filelock import FileLock
from filelock import Timeout as LockTimeout

from autotuner import HARNESS_VERSION
from autotuner.evaluator.compare import flatten_outputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peaks:
    copy_gbps: float  # device-to-device copy, bytes read + written per second / 1e9
    fp32_tflops: float  # SGEMM with TF32 off
    bf16_tflops: float
    gpu_name: str

    def flops_peak(self, dtype: str) -> float:
        return (self.fp32_tflops if dtype == "float32" else self.bf16_tflops) * 1e12


def _best_ms(fn: Any, reps: int) -> float:
    """The fastest of ``reps`` timed calls: another process on the GPU only ever slows a call,
    and a peak is a ceiling, so the best time is the honest one."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return min(times)


def measure_peaks() -> Peaks:
    """About two seconds of measurement on the current GPU; callers hold the peaks lock
    (``cached_peaks``), since GEMMs measured by several processes at once share the GPU."""
    n = 256 << 20  # 1 GiB of fp32
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    copy_ms = _best_ms(lambda: dst.copy_(src), 20)
    del src, dst
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        size = 8192
        a = torch.randn(size, size, device="cuda")
        b = torch.randn(size, size, device="cuda")
        fp32_ms = _best_ms(lambda: a @ b, 5)
        a16, b16 = a.bfloat16(), b.bfloat16()
        bf16_ms = _best_ms(lambda: a16 @ b16, 10)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    flops = 2 * size**3
    return Peaks(
        copy_gbps=2 * n * 4 / (copy_ms * 1e-3) / 1e9,
        fp32_tflops=flops / (fp32_ms * 1e-3) / 1e12,
        bf16_tflops=flops / (bf16_ms * 1e-3) / 1e12,
        gpu_name=torch.cuda.get_device_name(),
    )


# Part of the cache key: peaks cached by an earlier method are measured again. Method 2 (2026-12-01):
# one process measures at a time, best of the repetitions. Method 1 let the eight children of a
# `bench suite` measure at once, and an H200's fp32 GEMM peak was cached as 6-7 TFLOP/s (50.7 alone),
# which put every fp32 convolution under the roofline floor: rejected as "faster than the hardware".
PEAKS_METHOD = 2
PEAKS_LOCK_TIMEOUT_S = 300.0


class PeaksLockTimeout(RuntimeError):
    """Another process held the peaks lock for longer than a measurement takes."""


def peaks_cache_key(gpu_name: str, driver: str) -> str:
    text = f"{gpu_name}|{driver}|{torch.__version__}|{torch.version.cuda}|method{PEAKS_METHOD}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_peaks(path: Path) -> Peaks | None:
    if not path.is_file():
        return None
    try:
        return Peaks(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        log.warning("peaks cache %s is unreadable; measuring again", path)
        return None


def cached_peaks(cache_dir: Path, driver: str, remeasure: bool = False,
                 measure: Callable[[], Peaks] = measure_peaks) -> Peaks:
    """Peaks for this GPU from the cache, measured once when absent.

    A file lock makes the first process measure alone while the others wait for its figures:
    measured side by side, each process's GEMMs get a share of the GPU and the cached peak is a
    fraction of the real one.
    """
    gpu_name = torch.cuda.get_device_name()
    path = cache_dir / "peaks" / f"{peaks_cache_key(gpu_name, driver)}.json"
    if not remeasure and (peaks := _read_peaks(path)) is not None:
        return peaks
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(path.with_suffix(".lock")), timeout=PEAKS_LOCK_TIMEOUT_S):
            if not remeasure and (peaks := _read_peaks(path)) is not None:
                return peaks  # measured by the process that held the lock before us
            peaks = measure()
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(asdict(peaks)))
            tmp.replace(path)
            return peaks
    except LockTimeout as exc:
        raise PeaksLockTimeout(
            f"waited {PEAKS_LOCK_TIMEOUT_S:.0f} s for {path.with_suffix('.lock')}, held by a process measuring "
            "this GPU's peaks; if no autotuner process is running, delete the lock file and run again") from exc


def figures_key(task_hash: str, shape_json: Any) -> str:
    """A task's bytes and FLOPs depend on its content and shape only, not on the GPU."""
    text = json.dumps([task_hash, shape_json, torch.__version__, HARNESS_VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_figures(cache_dir: Path, key: str, measure: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    """(bytes moved, FLOPs) from the cache, or measured once and stored.

    Measuring runs the reference under PyTorch's flop counter, whose first use in a process costs
    seconds: without the cache every evaluated candidate paid it (three quarters of a softmax
    candidate's time on an H200).
    """
    path = cache_dir / "figures" / f"{key}.json"
    if path.is_file():
        try:
            figures = json.loads(path.read_text())
            return int(figures["bytes_moved"]), int(figures["flops"])
        except (ValueError, KeyError, TypeError):
            log.warning("roofline figures cache %s is unreadable; measuring again", path)
    bytes_moved, flops = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # children of two runs may race
        tmp.write_text(json.dumps({"bytes_moved": int(bytes_moved), "flops": int(flops)}))
        tmp.replace(path)
    except OSError as exc:  # a cache that cannot be written costs time, never the evaluation
        log.warning("roofline figures not cached at %s: %s", path, exc)
    return int(bytes_moved), int(flops)


def _unique_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes of the tensors themselves, each memory region once.

    Not the storage size: a reduction's 0-dim result can be a view into a large temporary's
    storage (``F.mse_loss`` returns one), and counting that storage would overstate the
    bytes and make the roofline floor too high.
    """
    regions: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_cuda:
            regions[t.data_ptr()] = max(regions.get(t.data_ptr(), 0), t.numel() * t.element_size())
    return sum(regions.values())


def estimate_bytes(inputs: list[Any], model: torch.nn.Module, outputs: Any) -> int:
    """Each input, weight and output touched once: the least any kernel must move."""
    tensors = [v for v in inputs if isinstance(v, torch.Tensor)]
    tensors += list(model.parameters()) + list(model.buffers())
    tensors += [o for o in flatten_outputs(outputs) if isinstance(o, torch.Tensor)]
    return _unique_bytes(tensors)


def count_flops(model: torch.nn.Module, inputs: list[Any]) -> int:
    """Matmul and convolution FLOPs of one forward (PyTorch's own counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return int(counter.get_total_flops())


def floor_ms(bytes_moved: int, flops: int, peaks: Peaks, dtype: str) -> float:
    """The roofline time: the larger of the memory time and the arithmetic time."""
    memory_s = bytes_moved / (peaks.copy_gbps * 1e9)
    compute_s = flops / peaks.flops_peak(dtype) if flops else 0.0
    return max(memory_s, compute_s) * 1e3
