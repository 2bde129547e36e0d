#!/usr/bin/env python3
"""Evaluate every red-team candidate (static check on) and every correct candidate, and print
a Markdown table: candidate | trick | verdict | stage | reason | wall s | as expected.

Run on a GPU machine from the repository root:

    python scripts/redteam_table.py                  # everything
    python scripts/redteam_table.py --only race      # candidates whose name contains "race"
    python scripts/redteam_table.py --json out.json  # also write the raw EvalResults
    python scripts/redteam_table.py --no-baselines   # correct candidates without eager/compile timing

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

from autotuner.evaluator import EvalConfig, Verdict, evaluate  # noqa: E402

REASON_CHARS = 90


def _cell(text: str, limit: int | None = None) -> str:
    text = " ".join(str(text).split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _config(cand: rt.Candidate, adversarial: bool, baselines: bool) -> EvalConfig:
    if adversarial:
        kwargs: dict[str, Any] = dict(static_check=True, time_candidate=cand.time, baselines=False)
    else:
        kwargs = dict(time_candidate=True, baselines=baselines)
    return EvalConfig(**kwargs, **rt.config_overrides(cand))


def _as_expected(cand: rt.Candidate, adversarial: bool, verdict: str, stage: str, reason: str) -> str:
    if adversarial:
        ok = (verdict == Verdict.REJECTED.value and stage in cand.expect
              and rt.reason_matches(reason, cand.reason))
        return "yes" if ok else f"NO (expected {'/'.join(sorted(cand.expect))})"
    return "yes" if verdict == Verdict.ACCEPTED.value else "NO (expected accepted)"


def run(only: str | None, baselines: bool) -> list[dict[str, Any]]:
    rows = []
    groups = [(True, rt.adversarial_candidates()), (False, rt.correct_candidates())]
    for adversarial, cands in groups:
        for cand in cands:
            if only and only not in cand.name:
                continue
            started = time.perf_counter()
            raw: dict[str, Any] | None = None
            try:
                result = evaluate(str(cand.task), str(cand.path), config=_config(cand, adversarial, baselines))
                verdict, stage, reason, raw = result.verdict.value, result.stage.value, result.reason, result.to_json()
                extra = ""
                if result.accepted and result.speedup_eager is not None:
                    extra = f" ({result.speedup_eager:.2f}x eager"
                    extra += f", {result.speedup_compile:.2f}x compile)" if result.speedup_compile else ")"
                reason += extra
            except Exception as exc:  # noqa: BLE001 - one failing row must not end the table
                verdict, stage, reason = "error", "-", f"evaluate raised {type(exc).__name__}: {exc}"
            wall = time.perf_counter() - started
            row = {
                "candidate": cand.rel(),
                "name": cand.name,
                "kind": "red-team" if adversarial else "correct",
                "trick": cand.trick,
                "task": cand.task.relative_to(REPO).as_posix(),
                "verdict": verdict,
                "stage": stage,
                "reason": reason,
                "wall_s": round(wall, 2),
                "expected": sorted(cand.expect) if adversarial else ["done"],
                "as_expected": _as_expected(cand, adversarial, verdict, stage, reason),
                "result": raw,
            }
            rows.append(row)
            print(f"[{len(rows)}] {cand.name}: {verdict} at {stage} ({wall:.1f} s)", file=sys.stderr, flush=True)
    return rows


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    parser.add_argument("--only", metavar="TEXT", help="only candidates whose name contains TEXT")
    parser.add_argument("--no-baselines", action="store_true",
                        help="do not time eager / torch.compile for the correct candidates")
    args = parser.parse_args(argv)
    rows = run(args.only, baselines=not args.no_baselines)
    print(markdown(rows))
    unexpected = [r["name"] for r in rows if r["as_expected"] != "yes"]
    print(f"\n{len(rows)} candidates, {len(rows) - len(unexpected)} as expected"
          + (f"; NOT as expected: {', '.join(unexpected)}" if unexpected else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
