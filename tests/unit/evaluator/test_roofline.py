import torch
import torch.nn.functional as F

from autotuner.evaluator import roofline
from autotuner.evaluator.roofline import Peaks, floor_ms


def test_floor_is_the_larger_of_memory_and_compute_time():
    peaks = Peaks(copy_gbps=1000.0, fp32_tflops=10.0, bf16_tflops=100.0, gpu_name="x")
    assert floor_ms(10**9, 0, peaks, "float32") == 1.0  # 1 GB at 1000 GB/s
    assert floor_ms(10**6, 10**11, peaks, "float32") == 10.0  # 0.1 TFLOP at 10 TFLOP/s
    assert floor_ms(10**6, 10**11, peaks, "bfloat16") == 1.0


def test_a_scalar_view_into_a_big_temporary_counts_as_four_bytes(monkeypatch):
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    loss = F.mse_loss(a, b)
    assert loss.untyped_storage().nbytes() >= 4  # may be the whole temporary's storage
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    assert roofline._unique_bytes([a, b, loss]) == 2 * 64 * 64 * 4 + 4
