"""``runtime.occupancy`` without a GPU: what the cluster helpers say when there is no driver
function to ask, and what they pass the driver when there is (a stand-in records the call)."""

from __future__ import annotations

from types import SimpleNamespace

from autotuner.runtime import occupancy
from autotuner.runtime.occupancy import allow_nonportable_clusters, max_active_clusters


def test_no_driver_function_means_cannot_say() -> None:
    emulated = SimpleNamespace(function=SimpleNamespace())  # an emulator's kernel: no handle
    assert allow_nonportable_clusters(emulated) is None
    assert allow_nonportable_clusters(object()) is None
    assert max_active_clusters(emulated, 128, 0, 16) is None


def test_the_non_portable_attribute_is_set_on_the_kernel_handle(monkeypatch) -> None:  # noqa: ANN001
    calls = []

    def fake(handle, attribute, value):  # noqa: ANN001, ANN202 - cuFuncSetAttribute
        calls.append((handle.value, attribute, value))
        return results.pop(0)

    results = [0, 1]  # CUDA_SUCCESS, then an error (a GPU without such clusters)
    monkeypatch.setattr(occupancy, "_set_attribute", [fake])
    kernel = SimpleNamespace(function=SimpleNamespace(kernel=SimpleNamespace(ptr=0x1234)))
    assert allow_nonportable_clusters(kernel) is True
    assert allow_nonportable_clusters(kernel) is False
    assert calls == [(0x1234, 14, 1), (0x1234, 14, 1)]  # CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED
