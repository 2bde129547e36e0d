"""The unwatched check without a GPU: the kernel-name comparison, the timing ratio, the skips,
and the capture helper it shares with ``TIMING = "graph"``, all with fakes (GPU behaviour:
tests/gpu/test_unwatched_eval.py and the red team's watch_detection candidates)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest

from autotuner.evaluator import timing
from autotuner.evaluator.timing import CaptureError
from autotuner.evaluator.unwatched import (MIN_TIMED_TO_REPLAY, SKIPPED, check_unwatched, timing_problem,
                                           unexpected_kernels)
from autotuner.evaluator.verdict import Stage
from autotuner.evaluator.verify import Rejection
from autotuner.evaluator.watch import KernelRecord, KernelTrace

OWN = "relu_watched"
TORCH_RELU = ("void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::"
              "launch_clamp_scalar(at::TensorIteratorBase&, c10::Scalar, c10::Scalar)::{lambda()#1}>(int, ...)")
FILL = "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<long>, std::array<char*, 1ul> >"


# ---- the name comparison -----------------------------------------------------------------------

def test_kernels_the_watched_forward_ran_are_expected() -> None:
    assert unexpected_kernels([OWN, OWN], [OWN]) == []


def test_a_kernel_only_the_unwatched_forward_ran_is_named_once() -> None:
    assert unexpected_kernels([OWN, TORCH_RELU, TORCH_RELU], [OWN]) == [TORCH_RELU]


def test_fills_are_left_out_as_the_integrity_pass_leaves_them_out() -> None:
    """A replay sets the generator state with fills PyTorch launches itself."""
    assert unexpected_kernels([FILL, OWN, "memset32_aligned1D"], [OWN]) == []


def test_names_compare_with_whitespace_collapsed() -> None:
    assert unexpected_kernels(["void k<float>(float const*,  float*)"], ["void k<float>(float const*, float*)\n"]) == []


def test_another_instantiation_of_an_own_kernel_is_another_kernel() -> None:
    assert unexpected_kernels(["void k<half>(half*)"], ["void k<float>(float*)"]) == ["void k<half>(half*)"]


# ---- the timing ratio ----------------------------------------------------------------------------

def test_timed_calls_slower_than_the_replay_pass() -> None:
    """Per-call timing pays host launch work and a synchronize: honest forwards sit above 1."""
    assert timing_problem(0.050, 0.030) is None
    assert timing_problem(0.030, 0.030) is None


def test_timed_calls_much_faster_than_the_replay_are_refused() -> None:
    reason = timing_problem(0.040, 0.500)
    assert reason is not None
    assert "0.08x" in reason and "faster, different path" in reason


def test_the_ratio_bound_is_the_documented_one() -> None:
    replay = 1.0
    assert timing_problem(MIN_TIMED_TO_REPLAY * replay * 1.01, replay) is None
    assert timing_problem(MIN_TIMED_TO_REPLAY * replay * 0.99, replay) is not None


def test_a_gap_of_a_few_microseconds_never_decides() -> None:
    assert timing_problem(0.002, 0.008) is None  # ratio 0.25, but 6 us apart: jitter, not a cheat
    assert timing_problem(0.0067, 0.0185) is None  # measured: an honest two-kernel forward on 8 x 8 (H200)
    assert timing_problem(0.002, 0.030) is not None


def test_the_launch_floor_comes_off_the_replay() -> None:
    """Measured on an H200 with five other evaluations on the GPU: an honest whole-tensor product
    (two kernels) ran plain in 0.0047 ms and replayed in 0.0359 ms. A graph of two near-empty
    kernels costs most of that; what is left is the forward's work."""
    assert timing_problem(0.0047, 0.0359) is not None
    assert timing_problem(0.0047, 0.0359, floor_ms=0.015, kernels=2) is None
    assert timing_problem(0.0047, 0.0359, floor_ms=0.040, kernels=2) is None  # a floor above the replay: no work to compare


def test_a_floor_does_not_hide_a_plain_path_far_faster_than_the_replay() -> None:
    reason = timing_problem(0.040, 0.500, floor_ms=0.020, kernels=3)
    assert reason is not None and "faster, different path" in reason
    assert "0.02 ms is what a replay of 3 near-empty kernels costs" in reason


def test_no_timing_figures_no_judgement() -> None:
    assert timing_problem(None, 1.0) is None
    assert timing_problem(0.5, None) is None
    assert timing_problem(0.5, 0.0) is None


# ---- the whole check, with a fake capture, profiler and timer ------------------------------------

class FakeGraph:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def replay(self) -> None:
        self.log.append("replay")


class Harness:
    """Records the order of events; every piece can be told how to behave."""

    def __init__(self, replayed: list[str], *, capture_error: str | None = None, output_problem: str | None = None,
                 replay_ms: float = 0.1, profiler_empty: bool = False) -> None:
        self.log: list[str] = []
        self.replayed, self.capture_error, self.problem = replayed, capture_error, output_problem
        self.replay_ms, self.profiler_empty = replay_ms, profiler_empty
        self.floor_ms = 0.0
        self.rounds: list[dict[str, Any]] = []  # per timing round, figures that differ from the defaults
        self.graph = FakeGraph(self.log)

    def capture(self, fns: list[Any], sets: list[list[Any]], *, warmup: int) -> tuple[Any, list[Any]]:
        assert len(fns) == 1 and warmup >= 1
        self.log.append("capture")
        if self.capture_error:
            raise CaptureError(self.capture_error)
        return self.graph, [fns[0](*sets[0])]

    def trace(self, fn: Any) -> tuple[Any, KernelTrace]:
        self.log.append("trace")
        fn()
        if self.profiler_empty:
            return None, KernelTrace()
        return None, KernelTrace([KernelRecord(n, 9, 1.0) for n in self.replayed], current_stream=7)

    def launch_floor(self, kernels: int) -> str:
        self.log.append(f"floor of {kernels}")
        return "floor graph"

    def time(self, graph: Any, call: Any, replays: int, *, flush: Any = None,
             floor: Any = None) -> tuple[list[float], list[float], list[float]]:
        assert graph is self.graph and flush == "flush" and call() == "out" and floor == "floor graph"
        self.log.append(f"time x{replays}")
        rounds = self.rounds.pop(0) if self.rounds else {}
        plain_ms = rounds.get("plain", self.plain_ms)
        plain = list(plain_ms) if isinstance(plain_ms, list) else [plain_ms] * replays
        return plain, [rounds.get("replay", self.replay_ms)] * replays, [rounds.get("floor", self.floor_ms)] * replays

    def refresh(self) -> None:
        self.log.append("refresh")

    def output_problem(self, out: Any) -> str | None:
        assert out == "out"
        self.log.append("check output")
        return self.problem

    def run(self, watched: list[str], plain_ms: float | list[float] | None = 0.1) -> str | None:
        """``plain_ms``: what each plain call times at (None: a graph-timed task, no comparison)."""
        self.plain_ms = plain_ms
        return check_unwatched(lambda x: "out", ["x"], self.refresh, self.output_problem, watched,
                               plain_ms is not None, "flush",
                               capture=self.capture, trace=self.trace, time=self.time,
                               launch_floor=self.launch_floor)


def test_an_honest_forward_passes_every_step() -> None:
    h = Harness([FILL, OWN], replay_ms=0.09)
    assert h.run([OWN], plain_ms=0.1) is None
    # uploaded, redrawn, replayed watched, checked, then timed
    assert h.log == ["capture", "replay", "refresh", "trace", "replay", "check output", "floor of 2", "time x10"]


def test_a_kernel_only_the_unwatched_forward_ran_rejects_at_integrity() -> None:
    h = Harness([TORCH_RELU])
    with pytest.raises(Rejection) as caught:
        h.run([OWN])
    assert caught.value.stage is Stage.INTEGRITY
    assert "different kernels when not watched" in caught.value.reason
    assert "vectorized_elementwise_kernel" in caught.value.reason and OWN in caught.value.reason
    assert "time x10" not in h.log


def test_timed_calls_far_faster_than_the_replay_reject_at_integrity() -> None:
    h = Harness([OWN], replay_ms=0.5)
    with pytest.raises(Rejection) as caught:
        h.run([OWN], plain_ms=0.04)
    assert caught.value.stage is Stage.INTEGRITY
    assert "faster, different path" in caught.value.reason


def test_the_fastest_plain_call_is_judged_not_one_slowed_by_another_process() -> None:
    """Plain calls mostly slowed by another process's time slices (0.6-0.9 ms) must not hide a
    plain path that runs at 0.04 ms: the fastest of the calls timed in turns is what counts."""
    h = Harness([OWN], replay_ms=0.5)
    with pytest.raises(Rejection) as caught:
        h.run([OWN], plain_ms=[0.6, 0.9, 0.04, 0.7, 0.8, 0.6, 0.9, 0.7, 0.6, 0.8])
    assert "faster, different path" in caught.value.reason


def test_a_failed_comparison_is_timed_again_before_it_rejects() -> None:
    """Another process's time slices can fall on the replays only: a second round, judged on the
    fastest figures of both, clears an honest forward and still rejects a real gap."""
    h = Harness([OWN], replay_ms=0.09)
    h.rounds = [{"replay": 0.5}]  # the first round's replays all slowed
    assert h.run([OWN], plain_ms=0.1) is None
    assert h.log.count("time x10") == 2

    cheat = Harness([OWN], replay_ms=0.5)
    with pytest.raises(Rejection):
        cheat.run([OWN], plain_ms=0.04)
    assert cheat.log.count("time x10") == 2


def test_the_launch_floor_is_measured_for_as_many_kernels_as_the_replay_ran() -> None:
    h = Harness([OWN, OWN, OWN], replay_ms=0.060)
    h.floor_ms = 0.030
    assert h.run([OWN], plain_ms=0.005) is None  # 0.03 ms of work, 25 us from the plain call: no verdict
    assert "floor of 3" in h.log


def test_a_capture_that_fails_is_a_recorded_skip_not_a_rejection() -> None:
    h = Harness([OWN], capture_error="RuntimeError: operation not permitted when stream is capturing")
    note = h.run([OWN])
    assert note is not None and note.startswith(SKIPPED)
    assert "operation not permitted when stream is capturing" in note
    assert h.log == ["capture"]


def test_a_capture_that_holds_no_kernel_is_a_recorded_skip() -> None:
    """Kernels on the legacy default stream run at once during the capture; the graph is empty
    but for the fills a replay launches itself."""
    note = Harness([FILL]).run([OWN])
    assert note is not None and note.startswith(SKIPPED) and "legacy default stream" in note


def test_an_empty_watched_trace_skips() -> None:
    h = Harness([TORCH_RELU])
    note = h.run([])
    assert note is not None and note.startswith(SKIPPED) and h.log == []


def test_an_empty_replay_trace_skips() -> None:
    note = Harness([TORCH_RELU], profiler_empty=True).run([OWN])
    assert note is not None and "profiler recorded no kernels" in note


def test_a_replay_with_a_wrong_result_skips_the_timing_comparison() -> None:
    h = Harness([OWN], output_problem="max abs error 3.2", replay_ms=5.0)
    note = h.run([OWN], plain_ms=0.01)  # would fail the ratio: not judged on a graph that did not compute
    assert note is not None and note.startswith(SKIPPED) and "max abs error 3.2" in note
    assert "time x10" not in h.log


def test_the_names_are_judged_even_when_the_result_is_wrong() -> None:
    with pytest.raises(Rejection):
        Harness([TORCH_RELU], output_problem="wrong").run([OWN])


def test_graph_timed_tasks_compare_names_only() -> None:
    h = Harness([OWN], replay_ms=5.0)
    assert h.run([OWN], plain_ms=None) is None
    assert "time x10" not in h.log


# ---- the capture helper, shared with TIMING = "graph" -------------------------------------------

class FakeCuda:
    """Just enough of torch.cuda for timing.capture_graph / time_graph / time_replays: a current
    stream, a stream context that restores it, and a graph context that, like torch.cuda.graph,
    leaves its capture stream current when ending a failed capture raises."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = self

        class Stream:
            def __init__(self, name: str = "side") -> None:
                self.name = name

            def wait_stream(self, other: "Stream") -> None:
                pass

        class Graph:
            def replay(self) -> None:
                fake.replays += 1

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                self.t = 0.0

            def record(self) -> None:
                self.t = float(fake.replays)

            def synchronize(self) -> None:
                pass

            def elapsed_time(self, end: "Event") -> float:
                return 2.0 * (end.t - self.t)  # 2 ms a replay

        @contextmanager
        def stream(s: Stream):
            saved = fake.stream
            fake.stream = s
            try:  # torch.cuda.StreamContext.__exit__ restores on an exception too
                yield
            finally:
                fake.stream = saved

        @contextmanager
        def graph(g: Graph):
            fake.stream = Stream("capture")
            yield  # an exception in the body: like torch, the capture stream stays current
            fake.stream = default

        default = Stream("default")
        self.stream = default
        self.replays = 0
        for name, value in {"_Stream": Stream, "_stream": stream, "_current_stream": lambda: fake.stream,
                            "_synchronize": lambda: None, "_CUDAGraph": Graph, "_graph": graph,
                            "_Event": Event}.items():
            monkeypatch.setattr(timing, name, value)

    @property
    def current(self) -> str:
        return self.stream.name


def test_capture_graph_warms_up_outside_the_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda(monkeypatch)
    streams: list[str] = []
    graph, outs = timing.capture_graph([lambda x: streams.append(cuda.current) or x + 1], [[1]], warmup=2)
    assert streams == ["side", "side", "capture"] and outs == [2]
    assert cuda.current == "default"


def test_a_failed_capture_is_a_capture_error_and_the_stream_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda(monkeypatch)

    def forward(x: int) -> int:
        if cuda.current == "capture":
            raise RuntimeError("operation not permitted when stream is capturing")
        return x

    with pytest.raises(CaptureError, match="not permitted"):
        timing.capture_graph([forward], [[1]], warmup=1)
    assert cuda.current == "default"


def test_time_replays_flushes_before_each_replay_and_divides_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda(monkeypatch)
    flushes: list[int] = []

    class Flush:
        def zero_(self) -> None:
            flushes.append(cuda.replays)

    graph = timing._CUDAGraph()
    assert timing.time_replays(graph, 3, per=4, flush=Flush()) == [0.5, 0.5, 0.5]
    assert flushes == [0, 1, 2] and cuda.replays == 3


def test_time_graph_still_checks_before_and_after_a_redraw(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = FakeCuda(monkeypatch)
    checks: list[tuple[int, int]] = []
    refreshed: list[int] = []
    run = timing.time_graph([lambda x: x, lambda x: -x], [[1], [2]], refreshed.append, replays=5, warmup=1,
                            check=lambda j, out: checks.append((j, out)))
    assert checks == [(0, 1), (1, -2), (0, 1), (1, -2)] and refreshed == [0, 1]
    assert run.samples_ms == [1.0] * 5  # 2 ms a replay of two calls
    assert cuda.replays == 1 + 5 + 1
