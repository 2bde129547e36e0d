"""Programmatic dependent launch: the driver structs match cuda.h, arguments are marshalled by
value, and with PDL off a launch is exactly ``module.launch`` (GPU behaviour: tests/deploy)."""

from __future__ import annotations

import ctypes

import numpy as np

from autotuner.runtime import pdl
from autotuner.runtime.pdl import CUlaunchAttribute, CUlaunchConfig, kernel_params, launch_config, pdl_enabled, pdl_launch


def test_struct_layouts_match_cuda_h() -> None:
    # CUlaunchAttribute: int id; char pad[4]; union (64 bytes, pointer-aligned) value
    assert ctypes.sizeof(CUlaunchAttribute) == 72 and CUlaunchAttribute.value.offset == 8
    # CUlaunchConfig: 7 unsigned ints, then the stream handle at 32, attrs at 40, numAttrs at 48
    assert CUlaunchConfig.hStream.offset == 32 and CUlaunchConfig.attrs.offset == 40
    assert CUlaunchConfig.numAttrs.offset == 48 and ctypes.sizeof(CUlaunchConfig) == 56
    assert pdl.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION == 6


def test_launch_config_carries_the_attribute() -> None:
    config, attrs = launch_config((5, 2), (128,), 0, 0xABC, pdl=True)
    assert (config.gridDimX, config.gridDimY, config.gridDimZ, config.blockDimX) == (5, 2, 1, 128)
    assert config.hStream == 0xABC and config.numAttrs == 1
    assert attrs[0].id == 6 and attrs[0].value.programmaticStreamSerializationAllowed == 1
    off, _ = launch_config(1, 32, 0, 0, pdl=False)
    assert off.numAttrs == 0


def test_kernel_params_point_at_values_of_the_declared_widths() -> None:
    array, keep = kernel_params((np.uint64(0x1234_5678_9ABC), np.int32(-7), np.float32(0.5), np.int64(1 << 40)))
    assert ctypes.c_uint64.from_address(array[0]).value == 0x1234_5678_9ABC
    assert ctypes.c_int32.from_address(array[1]).value == -7
    assert ctypes.c_float.from_address(array[2]).value == 0.5
    assert ctypes.c_int64.from_address(array[3]).value == 1 << 40
    assert [k.nbytes for k in keep] == [8, 4, 4, 8]


class _Module:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def launch(self, name, grid, block, args, shared_mem=0):  # noqa: ANN001, ANN201
        self.calls.append((name, grid, block, tuple(args), shared_mem))

    def kernel(self, name):  # noqa: ANN001, ANN201
        return name


def test_off_by_default_and_switchable(monkeypatch) -> None:  # noqa: ANN001
    module = _Module()
    pdl_launch(module, "k", (3,), (64,), (1, 2))
    assert module.calls == [("k", (3,), (64,), (1, 2), 0)] and not pdl.is_enabled()
    seen = []
    monkeypatch.setattr(pdl, "launch_ex", lambda kernel, grid, block, args, shared_mem=0, pdl=True: seen.append(kernel))
    with pdl_enabled(True):
        assert pdl.is_enabled()
        pdl_launch(module, "k", (3,), (64,), (1, 2))
        with pdl_enabled(False):
            pdl_launch(module, "k2", (3,), (64,), ())
    assert seen == ["k"] and len(module.calls) == 2 and not pdl.is_enabled()
