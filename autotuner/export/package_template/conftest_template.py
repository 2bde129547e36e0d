"""GPU tests skip with the reason where no CUDA GPU (or no CuPy) is present."""

import pytest


def _gpu_missing() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_missing()
    if reason:
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
