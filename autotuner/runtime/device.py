"""Facts about the visible GPU and the software stack, for provenance and `doctor`."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import Any

from autotuner.errors import NoGPUError


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return bool(torch.cuda.is_available())


def require_gpu() -> None:
    if not cuda_available():
        raise NoGPUError(
            "no CUDA GPU is visible (torch.cuda.is_available() is False): this step compiles and "
            "runs kernels, so it needs a machine with an NVIDIA GPU and a CUDA build of PyTorch"
        )


@dataclass(frozen=True)
class DeviceFacts:
    gpu_name: str
    capability: str  # "9.0"
    sm_count: int
    l2_bytes: int
    total_memory_bytes: int
    driver: str
    torch_version: str
    torch_cuda: str
    cupy_version: str
    cupy_cuda_runtime: str
    nvrtc_version: str
    python: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _driver_version() -> str:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return str(pynvml.nvmlSystemGetDriverVersion())
    except Exception:  # noqa: BLE001 - optional source; fall back to the CUDA driver API
        pass
    try:
        import cupy

        v = int(cupy.cuda.runtime.driverGetVersion())
        return f"cuda-driver-api {v // 1000}.{(v % 1000) // 10}"
    except Exception:  # noqa: BLE001
        return "unknown"


def device_facts(index: int = 0) -> DeviceFacts:
    """Read the facts of GPU ``index``; raises NoGPUError where there is none."""
    require_gpu()
    import torch

    props = torch.cuda.get_device_properties(index)
    cupy_version = cupy_rt = nvrtc = "not installed"
    try:
        import cupy

        cupy_version = cupy.__version__
        rt = int(cupy.cuda.runtime.runtimeGetVersion())
        cupy_rt = f"{rt // 1000}.{(rt % 1000) // 10}"
        major, minor = cupy.cuda.nvrtc.getVersion()
        nvrtc = f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - reported as missing, doctor explains
        pass
    return DeviceFacts(
        gpu_name=props.name,
        capability=f"{props.major}.{props.minor}",
        sm_count=int(props.multi_processor_count),
        l2_bytes=int(getattr(props, "L2_cache_size", 0)),
        total_memory_bytes=int(props.total_memory),
        driver=_driver_version(),
        torch_version=torch.__version__,
        torch_cuda=str(torch.version.cuda),
        cupy_version=cupy_version,
        cupy_cuda_runtime=cupy_rt,
        nvrtc_version=nvrtc,
        python=platform.python_version(),
    )
