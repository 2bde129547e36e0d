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


def test_figures_are_measured_once_per_task_and_shape_then_read_from_the_cache(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return 4096, 123

    key = roofline.figures_key("taskhash", {"x": [8, 8]})
    assert roofline.cached_figures(tmp_path, key, measure) == (4096, 123)
    assert roofline.cached_figures(tmp_path, key, measure) == (4096, 123)
    assert len(calls) == 1
    other = roofline.figures_key("taskhash", {"x": [8, 9]})
    assert other != key
    assert roofline.cached_figures(tmp_path, other, lambda: (1, 2)) == (1, 2)


def test_an_unreadable_figures_cache_is_measured_again_and_rewritten(tmp_path):
    key = roofline.figures_key("t", {})
    path = tmp_path / "figures" / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert roofline.cached_figures(tmp_path, key, lambda: (10, 0)) == (10, 0)
    assert roofline.cached_figures(tmp_path, key, lambda: (99, 99)) == (10, 0)


def test_a_figures_cache_that_cannot_be_written_still_gives_the_figures(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")  # the cache root is a file: nothing can be created under it
    assert roofline.cached_figures(blocked, roofline.figures_key("t", {}), lambda: (8, 1)) == (8, 1)
