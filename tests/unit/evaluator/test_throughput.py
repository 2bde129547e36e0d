"""The per-phase breakdown of ``bench evaluator``: medians, parts under their phase, the rest."""

import pytest

from autotuner.cli.bench_cmd import breakdown_lines
from autotuner.evaluator.throughput import REST, Throughput, part_of, phase_breakdown

RUNS = [
    {"child_start": 0.2, "cuda_init": 0.5, "setup": 0.3, "setup.roofline_figures": 0.1, "import": 0.2,
     "verify": 1.0, "verify.shape:default": 0.6, "guard_bytes": 0.1, "time_and_check": 2.0,
     "time_and_check.check_compare": 1.2, "unwatched_check": 0.3, "finish": 0.05},
    {"child_start": 0.4, "cuda_init": 0.7, "setup": 0.3, "setup.roofline_figures": 0.1, "import": 0.2,
     "verify": 1.2, "verify.shape:default": 0.8, "guard_bytes": 0.1, "time_and_check": 2.2,
     "time_and_check.check_compare": 1.4, "unwatched_check": 0.3, "finish": 0.05},
    {"child_start": 0.3, "cuda_init": 0.6, "setup": 0.3, "setup.roofline_figures": 0.1, "import": 0.2,
     "verify": 1.1, "verify.shape:default": 0.7, "guard_bytes": 0.1, "time_and_check": 2.1,
     "time_and_check.check_compare": 1.3, "unwatched_check": 0.3, "finish": 0.05, "sandbox": 0.02},
]
WALLS = [5.0, 6.0, 5.5]


def test_parts_belong_to_their_phase():
    assert part_of("verify.shape:default") == "verify"
    assert part_of("guard_bytes") == "verify"
    assert part_of("time_and_check.check_compare") == "time_and_check"
    assert part_of("cuda_init") is None


def test_breakdown_takes_medians_in_pipeline_order_with_parts_after_their_phase():
    rows = phase_breakdown(RUNS, WALLS)
    names = [r.phase for r in rows]
    assert len(names) == len(set(names)) == len({k for run in RUNS for k in run}) + 1
    assert names[:4] == ["child_start", "cuda_init", "sandbox", "setup"]
    assert names.index("setup.roofline_figures") == names.index("setup") + 1
    assert names.index("guard_bytes") > names.index("verify") and names.index("verify.shape:default") > names.index("verify")
    assert names[-1] == REST
    by = {r.phase: r for r in rows}
    assert by["cuda_init"].median_s == pytest.approx(0.6)
    assert by["sandbox"].median_s == 0.0  # missing in two runs of three counts as 0
    assert by["time_and_check"].share == pytest.approx(2.1 / 5.5)
    assert by["verify.shape:default"].part_of == "verify" and by["verify"].part_of is None


def test_rest_is_the_wall_the_phases_do_not_explain_parts_not_counted_twice():
    rows = phase_breakdown(RUNS, WALLS)
    tops = [sum(v for k, v in run.items() if part_of(k) is None) for run in RUNS]
    expected = sorted(w - t for w, t in zip(WALLS, tops))[1]
    assert rows[-1].median_s == pytest.approx(expected)


def test_empty_runs_give_no_rows_and_no_lines():
    assert phase_breakdown([], []) == []
    assert breakdown_lines([], 0.0) == []


def test_throughput_exposes_the_breakdown_of_its_single_runs():
    t = Throughput(WALLS, 10.0, 8, 7.0, ["accepted"] * 3, RUNS)
    assert t.breakdown == phase_breakdown(RUNS, WALLS)
    assert t.per_hour_single == pytest.approx(3600 / 5.5)


def test_lines_indent_parts_and_end_with_candidates_per_gpu_hour():
    lines = breakdown_lines(phase_breakdown(RUNS, WALLS), 3600 / 5.5)
    text = "\n".join(lines)
    verify = next(line for line in lines if line.strip().startswith("verify "))
    part = next(line for line in lines if line.strip().startswith("shape:default "))
    assert len(part) - len(part.lstrip()) > len(verify) - len(verify.lstrip())
    assert "1.100 s" in verify and "20.0%" in verify
    assert lines[-1].endswith("candidates per GPU-hour (target 3,000: 1.2 s each)")
    assert "655 candidates per GPU-hour" in lines[-1]
    assert REST in text


def test_distinct_settings_come_from_the_literal_space_in_two_disjoint_batches() -> None:
    from autotuner.evaluator.throughput import distinct_settings

    text = "PARAMS = {'BLOCK': [128, 256, 512], 'VEC': [1, 2, 4], 'ITEMS': [1, 2]}\nclass ModelNew: pass\n"
    one, other = distinct_settings(text, 16)
    assert len(one) == len(other) == 8
    assert all(set(s) == {"BLOCK", "VEC", "ITEMS"} for s in one + other)
    keys = [tuple(sorted(s.items())) for s in one + other]
    assert len(set(keys)) == 16  # every setting distinct, none shared between the batches
    small, rest = distinct_settings("PARAMS = {'B': [1, 2, 3]}\n", 16)
    assert len(small) == len(rest) == 1
    assert distinct_settings("PARAMS = make()\n", 16) == ([], [])
    assert distinct_settings("x = 1\n", 16) == ([], [])
