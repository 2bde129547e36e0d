"""An out-of-memory the processes sharing the GPU caused is a harness error, not the candidate's
rejection; one the GPU could never have met is the candidate's."""

import torch

from autotuner.evaluator import memory_pressure
from autotuner.evaluator.memory_pressure import environmental_oom, others_caused, requested_bytes

GIB = 1 << 30
H200 = 140 * GIB
# PyTorch's own message, as an H200 gave it on 2026-12-01
MESSAGE = ("CUDA out of memory. Tried to allocate 8.00 GiB. GPU 0 has a total capacity of 139.80 GiB of which "
           "4.61 GiB is free. Process 696 has 15.05 GiB memory in use.")


def test_the_request_is_read_from_pytorchs_message():
    assert requested_bytes(MESSAGE) == 8 * GIB
    assert requested_bytes("Tried to allocate 896.00 MiB. GPU 0 ...") == 896 * (1 << 20)
    assert requested_bytes("Tried to allocate 20 B") == 20
    assert requested_bytes("an illegal memory access was encountered") is None


def test_a_request_that_fits_the_gpu_but_not_what_others_left_is_not_the_candidates():
    # 4.6 GiB free, this process 15 GiB, others ~120 GiB: 8 GiB would have fit without them
    assert others_caused(8 * GIB, free=int(4.6 * GIB), total=H200, own=15 * GIB)


def test_a_request_larger_than_the_gpu_is_the_candidates():
    assert not others_caused(200 * GIB, free=int(4.6 * GIB), total=H200, own=15 * GIB)
    # the GPU to itself (others hold only a context): any out-of-memory is the candidate's
    assert not others_caused(8 * GIB, free=4 * GIB, total=H200, own=H200 - 4 * GIB - (1 << 28))


def test_environmental_oom_reads_the_device_and_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (int(4.6 * GIB), H200))
    monkeypatch.setattr(memory_pressure, "_own_bytes", lambda: 15 * GIB)
    reason = environmental_oom(torch.OutOfMemoryError(MESSAGE))
    assert reason and "not the candidate's doing" in reason and "8.00 GiB" in reason and "fewer parallel jobs" in reason
    assert environmental_oom(RuntimeError("CUDA error: an illegal memory access was encountered")) is None
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (_ for _ in ()).throw(RuntimeError("no device")))
    assert environmental_oom(torch.OutOfMemoryError(MESSAGE)) is None  # no figures: the caller decides
