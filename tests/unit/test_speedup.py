"""Speedups are summarised and written one way everywhere."""

from __future__ import annotations

import math

from autotuner.speedup import format_percent, format_speedup, geomean


def test_geomean_leaves_out_missing_and_non_positive_values() -> None:
    assert math.isclose(geomean([1.0, 4.0, None, 0.0, -2.0]), 2.0)
    assert geomean([]) is None and geomean([None, 0.0]) is None


def test_speedups_and_fractions_are_written_one_way() -> None:
    assert format_speedup(1.234) == "1.23x" and format_speedup(None) == "-"
    assert format_percent(0.456) == "46%" and format_percent(None) == "-"
