"""The run report: a Markdown table and a plot of best speedup against candidates evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotuner.speedup import format_percent, format_speedup, geomean
from evolution.outcome import TaskOutcome


def table_rows(outcomes: list[TaskOutcome]) -> list[list[str]]:
    rows = []
    for o in outcomes:
        best = o.best_result
        rows.append([
            o.task, "yes" if o.translated else "no", str(o.candidates), str(o.verdicts.get("accepted", 0)),
            format_speedup(best.speedup_eager if best else None), format_speedup(best.speedup_compile if best else None),
            format_percent(best.roofline_fraction if best else None), str(o.best_kernel_id or "-"),
            o.stop_kind or "-",
        ])
    return rows


HEADER = ["task", "translated", "candidates", "accepted", "vs eager", "vs compile", "roofline", "best kernel",
          "stopped"]


def stop_lines(outcomes: list[TaskOutcome]) -> list[str]:
    """One line per task: why its search stopped, and the LLM requests it sent by operator."""
    lines = []
    for o in outcomes:
        asked = ", ".join(f"{n} {op}" for op, n in sorted(o.requests.items()))
        llm = f" [{o.generations} generations; requests: {asked}]" if asked else ""
        lines.append(f"{o.task}: {o.stop_reason or 'not recorded'}{llm}")
    return lines


def compile_speedup(outcome: TaskOutcome) -> float | None:
    """torch.compile's speedup over eager on the task's timed shape (from the best result's
    baselines), or None when no accepted result carries both baselines."""
    best = outcome.best_result
    timed = best.timed if best else None
    if timed is None or timed.eager is None or timed.compiled is None or not timed.compiled.median_ms:
        return None
    return timed.eager.median_ms / timed.compiled.median_ms


def draw_progress(ax: Any, outcomes: list[TaskOutcome]) -> None:
    """Each task's best speedup over eager against candidates evaluated, and, dashed in the
    same color, torch.compile's speedup on that task: the line the search has to cross."""
    for o in outcomes:
        if o.curve:
            xs, ys = zip(*o.curve)
            (line,) = ax.step(xs, ys, where="post", label=o.task)
            compiled = compile_speedup(o)
            if compiled:
                ax.hlines(compiled, xs[0], xs[-1], colors=line.get_color(), linestyles="--", linewidth=1)
    if any(compile_speedup(o) for o in outcomes):
        ax.plot([], [], color="black", linestyle="--", linewidth=1, label="torch.compile (per task)")


def write_report(outcomes: list[TaskOutcome], out_dir: Path, run_id: int, config: dict[str, Any],
                 archive_url: str, simulated: bool = False, stop_reason: str = "") -> tuple[Path, Path]:
    """Write ``report.md`` and ``progress.png`` into ``out_dir``; return their paths.

    A simulated run's report says so in its title and plot: its numbers are made up. It says
    why the run stopped (``stop_reason``) and why each task's search did.
    """
    label = " (SIMULATED: made-up results, no GPU)" if simulated else ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "progress.png"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    draw_progress(ax, outcomes)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("candidates evaluated (per task)")
    ax.set_ylabel("best speedup vs PyTorch eager")
    ax.set_title(f"run {run_id}{label}: best verified speedup so far")
    if len(outcomes) <= 12:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)

    md = out_dir / "report.md"
    lines = [f"# Tuning run {run_id}{label}", "", f"Archive: `{archive_url}`", "",
             f"Proposer: {config.get('search', {}).get('proposer')}; "
             f"GPUs: {config.get('gpus')}; harness results are in the archive under run {run_id}.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(outcomes)]
    speedups = [o.best_result.speedup_eager for o in outcomes if o.best_result and o.best_result.speedup_eager]
    compiled = [o.best_result.speedup_compile for o in outcomes if o.best_result and o.best_result.speedup_compile]
    lines += ["", f"Geomean speedup of the best kernels: {format_speedup(geomean(speedups))} vs eager, "
              f"{format_speedup(geomean(compiled))} vs torch.compile.", "", "![best speedup](progress.png)", ""]
    lines += ["## Why it stopped", ""] + ([f"The run: {stop_reason}.", ""] if stop_reason else [])
    lines += [f"- {line}" for line in stop_lines(outcomes)] + [""]
    notes = [(o.task, n) for o in outcomes for n in o.notes]
    if notes:
        lines += ["## Notes", ""] + [f"- {task}: {note}" for task, note in notes[:100]] + [""]
    md.write_text("\n".join(lines))
    return md, png
