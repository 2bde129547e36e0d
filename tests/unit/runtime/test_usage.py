"""The resource report: the first launch of each kernel, with the driver's attributes (no GPU:
a stand-in function object carrying CuPy's ``attributes`` dict)."""

from __future__ import annotations

from autotuner.evaluator.verdict import KernelResources
from autotuner.runtime import usage
from autotuner.runtime.launch import Kernel


class FakeFunction:
    """What CuPy's RawKernel exposes: ``attributes`` read from cuFuncGetAttribute."""

    def __init__(self, regs: int, local: int = 0, shared: int = 0) -> None:
        self.attributes = {"num_regs": regs, "local_size_bytes": local, "shared_size_bytes": shared,
                           "const_size_bytes": 0, "max_threads_per_block": 1024, "ptx_version": 90}


class Broken:
    @property
    def attributes(self) -> dict:
        raise RuntimeError("CUDA_ERROR_ILLEGAL_ADDRESS")


def test_the_first_launch_of_each_kernel_is_reported_with_its_attributes():
    usage.reset()
    softmax = Kernel("softmax_rows", FakeFunction(40, local=16, shared=256), None)
    relu = Kernel("relu", FakeFunction(12), None)
    softmax.note_launch((256,), shared_mem=1024)
    softmax.note_launch((1024,), shared_mem=0)  # later launches are not noted
    relu.note_launch((32, 4), shared_mem=0)
    report = [KernelResources(**entry) for entry in usage.launched_kernels()]
    assert report == [
        KernelResources("relu", registers=12, max_threads_per_block=1024, block_threads=128),
        KernelResources("softmax_rows", registers=40, local_bytes=16, shared_static_bytes=256,
                        shared_dynamic_bytes=1024, max_threads_per_block=1024, block_threads=256),
    ]


def test_reset_starts_a_new_report_and_kernels_are_noted_again():
    usage.reset()
    kernel = Kernel("k", FakeFunction(20), None)
    kernel.note_launch((64,), 0)
    usage.reset()
    assert usage.launched_kernels() == []
    kernel.note_launch((128,), 0)  # the same (cached) kernel, next parameter setting
    assert [e["block_threads"] for e in usage.launched_kernels()] == [128]


def test_a_driver_that_cannot_say_gives_no_report_and_no_error():
    usage.reset()
    usage.note_launch("broken", Broken(), (32,), 0)
    usage.note_launch("plain", object(), (32,), 0)
    assert usage.launched_kernels() == []


def test_the_worker_turns_the_notes_into_the_result_and_survives_tampering(monkeypatch):
    from autotuner.evaluator.worker import resource_report

    usage.reset()
    Kernel("k", FakeFunction(20, local=8, shared=64), None).note_launch((128,), 256)
    assert resource_report() == [KernelResources("k", registers=20, local_bytes=8, shared_static_bytes=64,
                                                 shared_dynamic_bytes=256, max_threads_per_block=1024,
                                                 block_threads=128)]
    monkeypatch.setattr(usage, "launched_kernels", lambda: [{"name": "k", "registers": "many"}])
    assert resource_report() == []  # the candidate shares the process: a garbled report is dropped


def test_watchers_see_every_launch_in_order_while_watching():
    seen: list[str] = []
    softmax = Kernel("softmax_rows", FakeFunction(40), None)
    relu = Kernel("relu", FakeFunction(12), None)
    relu.note_launch((32,), shared_mem=0)  # before: not seen
    with usage.watch_launches(seen.append):
        softmax.note_launch((256,), shared_mem=0)
        relu.note_launch((32,), shared_mem=0)
        softmax.note_launch((256,), shared_mem=0)  # every launch, not only the first of a report
    relu.note_launch((32,), shared_mem=0)  # after: not seen
    assert seen == ["softmax_rows", "relu", "softmax_rows"]
    assert not usage.WATCHERS
