"""The run report: the plot draws torch.compile's speedup, the line a kernel must beat."""

from __future__ import annotations

from evolution.loop import TaskOutcome
from autotuner.app.report import compile_speedup, write_report
from autotuner.evaluator.verdict import EvalResult, ShapeResult, Stage, TimingStats, Verdict


def _stats(ms: float) -> TimingStats:
    return TimingStats.from_samples([ms, ms, ms])


def _outcome(name: str, cand_ms: float, eager_ms: float, compile_ms: float | None) -> TaskOutcome:
    shape = ShapeResult("default", hidden=False, trials=5, passed=True, candidate=_stats(cand_ms),
                        eager=_stats(eager_ms), compiled=_stats(compile_ms) if compile_ms else None)
    result = EvalResult(Verdict.ACCEPTED, Stage.DONE, "ok", task_name=name, shapes=[shape],
                        speedup_eager=eager_ms / cand_ms,
                        speedup_compile=compile_ms / cand_ms if compile_ms else None)
    return TaskOutcome(name, "test", translated=True, candidates=3, best_result=result,
                       curve=[(1, 0.9), (2, eager_ms / cand_ms), (3, eager_ms / cand_ms)])


def test_compile_speedup_is_eager_over_compile_on_the_timed_shape() -> None:
    assert compile_speedup(_outcome("a", 1.0, 2.0, 1.6)) == 2.0 / 1.6
    assert compile_speedup(_outcome("b", 1.0, 2.0, None)) is None
    assert compile_speedup(TaskOutcome("c", "test")) is None


def test_report_plots_the_compile_line(tmp_path) -> None:  # noqa: ANN001
    outcomes = [_outcome("a", 1.0, 2.0, 1.6), _outcome("b", 1.0, 3.0, None)]
    md, png = write_report(outcomes, tmp_path, 7, {"search": {"proposer": "rules"}}, "sqlite:///x.db")
    assert png.stat().st_size > 1000
    text = md.read_text()
    assert "| a |" in text and "vs torch.compile" in text


def test_progress_plot_draws_each_tasks_compile_speedup() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autotuner.app.report import draw_progress

    fig, ax = plt.subplots()
    draw_progress(ax, [_outcome("a", 1.0, 2.0, 1.6), _outcome("b", 1.0, 3.0, None)])
    dashed = [seg for c in ax.collections for seg in c.get_segments()]
    plt.close(fig)
    assert len(dashed) == 1  # only task a has a compile baseline
    (start, end), = [dashed[0]]
    assert start[1] == end[1] == 2.0 / 1.6 and start[0] == 1 and end[0] == 3
