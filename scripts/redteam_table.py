#!/usr/bin/env python3
"""Evaluate every red-team candidate (static check on) and every correct candidate, and print
a Markdown table: candidate | trick | verdict | stage | reason | wall s | as expected.

Run on a GPU machine from the repository root:

    python scripts/redteam_table.py                  # everything
    python scripts/redteam_table.py --only race      # candidates whose name contains "race"
    python scripts/redteam_table.py --json out.json  # also write the raw EvalResults
    python scripts/redteam_table.py --no-baselines   # correct candidates without eager/compile timing
    python scripts/redteam_table.py --both           # red team with the static check on AND off (two columns)
    python scripts/redteam_table.py --no-static-check  # red team with the static check off only
    python scripts/redteam_table.py --styles --sanitize  # honest styles: guard-byte cost, sanitizer time per winner
    python scripts/redteam_table.py --both --jobs 8  # eight evaluations at a time (rows keep their order)

Static-check rejections need no GPU, so on a CPU machine those rows still fill in and the
others say why they could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "adversarial"))

import redteam_lib as rt  # noqa: E402

from contextlib import nullcontext  # noqa: E402

from autotuner.evaluator import EvalConfig, Verdict, evaluate  # noqa: E402
from autotuner.evaluator.sanitize import sanitize, winner_gate  # noqa: E402

REASON_CHARS = 90
STATIC_ONLY = "static check only"


def _cell(text: str, limit: int | None = None) -> str:
    text = " ".join(str(text).split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _config(cand: rt.Candidate, adversarial: bool, baselines: bool, static_check: bool = True) -> EvalConfig:
    if adversarial:
        kwargs: dict[str, Any] = dict(static_check=static_check, time_candidate=cand.time, baselines=False)
    else:
        kwargs = dict(time_candidate=True, baselines=baselines)
    return EvalConfig(**kwargs, **rt.config_overrides(cand))


def _as_expected(cand: rt.Candidate, adversarial: bool, verdict: str, stage: str, reason: str,
                 static_check: bool = True) -> str:
    if adversarial:
        expect, words = (cand.expect, cand.reason) if static_check or not cand.static_only else (
            cand.expect_runtime or frozenset(), cand.reason_runtime)
        if not static_check and cand.static_only and cand.expect_runtime is None:
            return STATIC_ONLY  # the header says only the static check can stop it: the row shows what happened
        ok = verdict == Verdict.REJECTED.value and stage in expect and rt.reason_matches(reason, words)
        return "yes" if ok else f"NO (expected {'/'.join(sorted(expect))})"
    return "yes" if verdict == Verdict.ACCEPTED.value else "NO (expected accepted)"


def _expected(cand: rt.Candidate, adversarial: bool, static_check: bool) -> list[str]:
    """The stages a row expects: EXPECT, or with the static check off EXPECT_RUNTIME where the
    static check is what stops the candidate (empty: only the static check can stop it)."""
    if not adversarial:
        return ["done"]
    if static_check or not cand.static_only:
        return sorted(cand.expect)
    return sorted(cand.expect_runtime or ())


def _evaluate(cand: rt.Candidate, config: EvalConfig, adversarial: bool) -> Any:
    """One evaluation as the red-team tests run it (escape targets set up, winner gate where named)."""
    with rt.EscapeTargets() if cand.secrets else nullcontext() as targets:
        path = targets.candidate(cand.path) if targets else cand.path
        result = evaluate(str(cand.task), str(path), config=config)
        if adversarial and cand.winner_gate:
            result = winner_gate(result, cand.task, path)
        if targets:
            leaked = rt.EscapeTargets.leaks(json.dumps(result.to_json())) + targets.dropped()
            if leaked:
                result.reason += f" [LEAKED: {leaked}]"
                result.verdict = Verdict.ACCEPTED  # a leak counts as a failure of the red-team row
    return result


def _row(adversarial: bool, cand: rt.Candidate, baselines: bool, static_check: bool) -> dict[str, Any]:
    """One table row: evaluate ``cand`` and say whether the verdict is the expected one."""
    started = time.perf_counter()
    raw: dict[str, Any] | None = None
    try:
        result = _evaluate(cand, _config(cand, adversarial, baselines, static_check), adversarial)
        verdict, stage, reason, raw = result.verdict.value, result.stage.value, result.reason, result.to_json()
        if result.accepted and result.speedup_eager is not None:
            reason += f" ({result.speedup_eager:.2f}x eager"
            reason += f", {result.speedup_compile:.2f}x compile)" if result.speedup_compile else ")"
        if result.accepted and result.warnings:  # e.g. a skipped unwatched check: the table says so
            reason += f" [warnings: {'; '.join(w[:120] for w in result.warnings)}]"
    except Exception as exc:  # noqa: BLE001 - one failing row must not end the table
        verdict, stage, reason = "error", "-", f"evaluate raised {type(exc).__name__}: {exc}"
    wall = time.perf_counter() - started
    print(f"{cand.name} (static {'on' if static_check else 'off'}): {verdict} at {stage} ({wall:.1f} s)",
          file=sys.stderr, flush=True)
    return {
        "candidate": cand.rel(),
        "name": cand.name,
        "kind": "red-team" if adversarial else "correct",
        "trick": cand.trick,
        "task": cand.task.relative_to(REPO).as_posix(),
        "verdict": verdict,
        "stage": stage,
        "reason": reason,
        "wall_s": round(wall, 2),
        "expected": _expected(cand, adversarial, static_check),
        "as_expected": _as_expected(cand, adversarial, verdict, stage, reason, static_check),
        "static_check": static_check,
        "result": raw,
    }


def _map(fn: Any, jobs: list[tuple], workers: int) -> list[Any]:
    """``fn(*job)`` for every job, in order; ``workers`` processes at a time (slow rows first)."""
    if workers <= 1:
        return [fn(*job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Start the slow compiles (load_inline) first so they do not finish last on their own.
    order = sorted(range(len(jobs)), key=lambda i: not any(getattr(a, "slow", False) for a in jobs[i]))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(fn, *jobs[i]) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


def run(only: str | None, baselines: bool, static_check: bool = True, correct: bool = True,
        workers: int = 1) -> list[dict[str, Any]]:
    groups = [(True, rt.adversarial_candidates())] + ([(False, rt.correct_candidates())] if correct else [])
    jobs = [(adversarial, cand, baselines, static_check) for adversarial, cands in groups for cand in cands
            if not only or only in cand.name]
    return _map(_row, jobs, workers)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| candidate | trick | verdict | stage | reason | wall s | as expected |",
        "| --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for r in rows:
        name = r["name"] if r["kind"] == "red-team" else f"{r['name']} (correct)"
        lines.append(
            f"| {_cell(name)} | {_cell(r['trick'], 60)} | {r['verdict']} | {r['stage']} | "
            f"{_cell(r['reason'], REASON_CHARS)} | {r['wall_s']:.1f} | {_cell(r['as_expected'])} |"
        )
    return "\n".join(lines)


def both_markdown(on: list[dict[str, Any]], off: list[dict[str, Any]]) -> str:
    """The red team with the static check on and off, side by side."""
    by_name = {r["name"]: r for r in off}
    lines = ["| candidate | trick | static on: stage | reason | static off: stage | reason | as expected (on / off) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in on:
        o = by_name.get(r["name"], {})
        lines.append(f"| {_cell(r['name'])} | {_cell(r['trick'], 50)} | {r['verdict']} at {r['stage']} | "
                     f"{_cell(r['reason'], 70)} | {o.get('verdict', '-')} at {o.get('stage', '-')} | "
                     f"{_cell(o.get('reason', ''), 70)} | {r['as_expected']} / {o.get('as_expected', '-')} |")
    return "\n".join(lines)


def _style_row(cand: rt.Candidate, with_sanitizer: bool) -> dict[str, Any]:
    started = time.perf_counter()
    result = evaluate(str(cand.task), str(cand.path), config=EvalConfig(time_candidate=False, baselines=False))
    row: dict[str, Any] = {"name": cand.name, "trick": cand.trick, "verdict": result.verdict.value,
                           "stage": result.stage.value, "reason": result.reason,
                           "verify_s": result.phases_s.get("verify", 0.0),
                           "guard_s": result.phases_s.get("guard_bytes", 0.0),
                           "wall_s": time.perf_counter() - started,
                           "sandbox": result.provenance.sandbox if result.provenance else ""}
    if with_sanitizer and result.accepted:
        report = sanitize(cand.task, cand.path)
        row.update(sanitizer_s=report.seconds, sanitizer=report.reason,
                   sanitizer_tools={r.tool: round(r.seconds, 1) for r in report.runs}, sanitizer_ok=report.passed)
    print(f"[style] {cand.name}: {row['verdict']} at {row['stage']} ({row['wall_s']:.1f} s)", file=sys.stderr, flush=True)
    return row


def styles(only: str | None, with_sanitizer: bool, workers: int = 1) -> list[dict[str, Any]]:
    """Honest candidates (tests/candidates): verdict, guard-byte cost, sanitizer time per winner."""
    jobs = [(cand, with_sanitizer) for cand in rt.correct_candidates() if not only or only in cand.name]
    return _map(_style_row, jobs, workers)


def styles_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| candidate | style | verdict | verify s | guard bytes s (share) | sanitizer s (memcheck / racecheck / initcheck) | sanitizer |",
             "| --- | --- | --- | ---: | ---: | --- | --- |"]
    for r in rows:
        share = f"{r['guard_s']:.3f} ({100 * r['guard_s'] / r['verify_s']:.1f}%)" if r["verify_s"] else "-"
        tools = r.get("sanitizer_tools") or {}
        san = (f"{r['sanitizer_s']:.1f} ({' / '.join(str(v) for v in tools.values())})" if "sanitizer_s" in r else "-")
        lines.append(f"| {_cell(r['name'])} | {_cell(r['trick'], 60)} | {r['verdict']} at {r['stage']} | "
                     f"{r['verify_s']:.2f} | {share} | {san} | {_cell(r.get('sanitizer', ''), 60)} |")
    accepted = sum(r["verdict"] == "accepted" for r in rows)
    lines.append(f"\n{accepted} of {len(rows)} honest candidates accepted ({len(rows) - accepted} false rejections)")
    if any("sanitizer_s" in r for r in rows):
        times = [r["sanitizer_s"] for r in rows if "sanitizer_s" in r]
        passed = sum(bool(r.get("sanitizer_ok")) for r in rows)
        lines.append(f"compute-sanitizer per winner: median {sorted(times)[len(times) // 2]:.1f} s, "
                     f"max {max(times):.1f} s; {passed} of {len(times)} passed")
    guards = [r["guard_s"] for r in rows if r["verdict"] == "accepted"]
    if guards:
        lines.append(f"guard bytes per evaluation: median {1e3 * sorted(guards)[len(guards) // 2]:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--both", action="store_true", help="red team with the static check on and off")
    parser.add_argument("--no-static-check", action="store_true", help="red team with the static check off")
    parser.add_argument("--styles", action="store_true", help="the honest-styles table only")
    parser.add_argument("--sanitize", action="store_true", help="with --styles: compute-sanitizer time per winner")
    parser.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    parser.add_argument("--only", metavar="TEXT", help="only candidates whose name contains TEXT")
    parser.add_argument("--no-baselines", action="store_true",
                        help="do not time eager / torch.compile for the correct candidates")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="evaluate N candidates at a time (for verdicts; timings taken in parallel are not comparable)")
    args = parser.parse_args(argv)
    if args.styles:
        srows = styles(args.only, args.sanitize, args.jobs)
        print(styles_markdown(srows))
        if args.json:
            Path(args.json).write_text(json.dumps(srows, indent=2, default=str))
        return 0 if all(r["verdict"] == "accepted" and r.get("sanitizer_ok", True) for r in srows) else 1
    if args.both:
        # one job list for both columns, so that in parallel the slow rows of each overlap
        jobs = [(True, c, False, check) for check in (True, False) for c in rt.adversarial_candidates()
                if not args.only or args.only in c.name]
        rows_both = _map(_row, jobs, args.jobs)
        on, off = rows_both[: len(jobs) // 2], rows_both[len(jobs) // 2:]
        print(both_markdown(on, off))
        rows = on + off
    else:
        rows = run(args.only, baselines=not args.no_baselines, static_check=not args.no_static_check,
                   workers=args.jobs)
        print(markdown(rows))
    unexpected = [r["name"] for r in rows if r["as_expected"] not in ("yes", STATIC_ONLY)]
    static_only = [f"{r['name']} ({r['verdict']})" for r in rows if r["as_expected"] == STATIC_ONLY]
    print(f"\n{len(rows)} candidates, {len(rows) - len(unexpected) - len(static_only)} as expected"
          + (f"; stopped by the static check only: {', '.join(static_only)}" if static_only else "")
          + (f"; NOT as expected: {', '.join(unexpected)}" if unexpected else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
