"""Index division in pointwise kernels (kernels/templates/divider.cu): the multiplier and shift
a candidate's forward computes per launch give t // d exactly for every int index t below 2^31,
as the kernel evaluates it (a 32-bit multiply-high, an add and a shift)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from autotuner.tasks import load_task
from evolution.proposers.rules import translate

ROOT = Path(__file__).resolve().parents[3]


def _divider_lines() -> tuple[str, str]:
    """The forward's two lines for the first coordinate size of rope_bf16's first region."""
    source = translate(load_task(ROOT / "kernels/tasks/decode/rope_bf16.py")).proposals[0].source
    shift = re.search(r"^\s*(sz1_0 = .*)$", source, re.M).group(1)
    mult = re.search(r"^\s*(mz1_0 = .*)$", source, re.M).group(1)
    assert "rules_idiv(t_, z1, mz1, sz1)" in source
    return shift, mult


def _device_div(t: int, m: int, s: int) -> int:
    hi = (t * m) >> 32  # __umulhi((unsigned)t, m)
    return ((hi + t) & 0xFFFFFFFF) >> s


def test_the_forwards_divider_divides_every_int_index_exactly() -> None:
    shift, mult = _divider_lines()
    rng = random.Random(0)
    divisors = list(range(1, 300)) + [2 ** k + o for k in range(9, 31) for o in (-1, 0, 1)] + \
        [rng.randrange(1, 2 ** 30) for _ in range(300)]
    for d in divisors:
        env = {"z1_0": d}
        exec(shift, env)  # noqa: S102 - the generated lines, run as the candidate runs them
        exec(mult, env)  # noqa: S102
        m, s = env["mz1_0"], env["sz1_0"]
        assert 0 < m < 2 ** 32 and 0 <= s <= 31, (d, m, s)
        for t in [0, 1, d - 1, d, d + 1, 2 ** 30 - 1, 2 ** 31 - 1] + [rng.randrange(0, 2 ** 31) for _ in range(40)]:
            if t >= 0:
                assert _device_div(t, m, s) == t // d, (t, d)
