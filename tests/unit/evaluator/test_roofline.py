from pathlib import Path

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


def _peaks(tflops: float = 50.0) -> Peaks:
    return Peaks(copy_gbps=4000.0, fp32_tflops=tflops, bf16_tflops=750.0, gpu_name="fake GPU")


def _race_for_peaks(cache_dir: str, log_path: str, start_at: float, results) -> None:
    """One process of the race below: the whole GPU part is faked, the lock and cache are real."""
    import os
    import time

    torch.cuda.get_device_name = lambda *a: "fake GPU"

    def measure() -> Peaks:
        with open(log_path, "a") as log:
            log.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # a measurement takes a while: the others must wait, not measure too
        return _peaks(50.0 + os.getpid() % 7)

    time.sleep(max(0.0, start_at - time.time()))
    results.put(roofline.cached_peaks(Path(cache_dir), "drv", measure=measure).fp32_tflops)


def test_processes_that_start_together_measure_the_peaks_once_and_share_them(tmp_path):
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    log_path = tmp_path / "measured.log"
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=_race_for_peaks, args=(str(tmp_path), str(log_path), start_at, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(log_path.read_text().split()) == 1  # one process measured; three read its figures
    assert len({results.get(timeout=5) for _ in procs}) == 1


def test_remeasure_measures_again_and_replaces_the_cached_peaks(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "fake GPU")
    assert roofline.cached_peaks(tmp_path, "drv", measure=lambda: _peaks(6.2)).fp32_tflops == 6.2
    assert roofline.cached_peaks(tmp_path, "drv", measure=lambda: _peaks(99.0)).fp32_tflops == 6.2
    assert roofline.cached_peaks(tmp_path, "drv", remeasure=True, measure=lambda: _peaks(50.7)).fp32_tflops == 50.7
    assert roofline.cached_peaks(tmp_path, "drv", measure=lambda: _peaks(99.0)).fp32_tflops == 50.7


def test_peaks_cached_by_an_earlier_method_are_not_reused(monkeypatch):
    key = roofline.peaks_cache_key("NVIDIA H200", "580")
    monkeypatch.setattr(roofline, "PEAKS_METHOD", roofline.PEAKS_METHOD - 1)
    assert roofline.peaks_cache_key("NVIDIA H200", "580") != key


def test_a_lock_held_too_long_says_which_file_to_delete(tmp_path, monkeypatch):
    from filelock import FileLock

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "fake GPU")
    monkeypatch.setattr(roofline, "PEAKS_LOCK_TIMEOUT_S", 0.2)
    path = tmp_path / "peaks" / f"{roofline.peaks_cache_key('fake GPU', 'drv')}.lock"
    path.parent.mkdir()
    with FileLock(str(path)):
        # filelock's locks are re-entrant within a process: hold it from another one
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        errors = ctx.Queue()

        def attempt():
            try:
                roofline.cached_peaks(tmp_path, "drv", measure=_peaks)
                errors.put("")
            except roofline.PeaksLockTimeout as exc:
                errors.put(str(exc))

        p = ctx.Process(target=attempt)
        p.start()
        p.join(30)
        message = errors.get(timeout=5)
    assert str(path) in message and "delete the lock file" in message
