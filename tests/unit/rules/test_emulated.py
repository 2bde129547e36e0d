"""The generated candidates compute the right thing: each suite task's default variant runs on
the CPU emulator (``cuda_emu``) against the CPU reference, on the task's small (mostly hidden)
shapes, under the evaluator's own op watch and tolerances. ``RULES_EMU_VARIANTS=all`` checks
every variant (about ten minutes on two cores) instead of the first of each task.

Emulated, not measured: no GPU memory model, timing or NVRTC here (see the module docstring
of ``cuda_emu``); these tests catch wrong index math, reductions, rounding points, missing
tails, unaligned vector accesses and barriers that not every thread reaches.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import cuda_emu
from conftest import PATHS, SUITE, rel

pytestmark = pytest.mark.slow
NAMES = sorted(rel(p) for p in PATHS)
EMU_BLOCK = 128  # fewer emulated threads per block; the kernels take any multiple of 32
MAX_ELEMS = {"decode/attention_decode_bf16": 3_000_000, "decode/attention_decode_gqa_bf16": 3_000_000,
             "decode/attention_o_residual_bf16": 3_000_000}
DEFAULT_MAX_ELEMS = 600_000


def _params(proposal) -> dict:  # noqa: ANN001
    params = dict(proposal.default_params)
    if "BLOCK" in params or not proposal.variant.startswith("flash/"):  # flash: WARPS, no BLOCK
        params["BLOCK"] = min(params.get("BLOCK", EMU_BLOCK), EMU_BLOCK)
    if proposal.variant == "attention/split":
        params["WAVES"] = 64  # a larger cap, so that the emulated grid really splits the keys
    if proposal.variant == "seed/attention_decode_gqa_bf16":
        pass  # the default, the cluster path, at 128 threads: 8 ranges a KV head merged in the cluster
    return params


def _jobs(translations) -> list[tuple[str, object]]:  # noqa: ANN001
    every = os.environ.get("RULES_EMU_VARIANTS") == "all"
    jobs = []
    for name in NAMES:
        proposals = translations[name].proposals
        chosen = proposals if every else proposals[:1]
        if not every and name == "decode/attention_decode_bf16":
            chosen = proposals  # the split-K path has its own combine kernel
        jobs += [(name, p) for p in chosen]
    return jobs


@pytest.fixture(scope="session")
def emulated(translations):  # noqa: ANN001, ANN201 - {(task, variant): report}
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    tmp = Path(tempfile.mkdtemp(prefix="rules-emu-"))
    jobs = _jobs(translations)
    specs = []
    for name, proposal in jobs:
        path = tmp / f"{name.replace('/', '__')}__{proposal.variant.replace('/', '_')}.py"
        path.write_text(proposal.source)
        specs.append((SUITE / f"{name}.py", path, _params(proposal), MAX_ELEMS.get(name, DEFAULT_MAX_ELEMS)))
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    return {(name, p.variant): report for (name, p), report in zip(jobs, reports)}


@pytest.mark.parametrize("name", NAMES)
def test_candidate_matches_reference_on_cpu_emulator(name: str, emulated) -> None:  # noqa: ANN001
    reports = {variant: r for (task, variant), r in emulated.items() if task == name}
    assert reports, f"no emulated run for {name}"
    bad = {variant: r["reason"] for variant, r in reports.items() if not r["ok"]}
    assert not bad, bad
    for report in reports.values():
        assert any(s["law"] != "task" for s in report["shapes"]) or name in ("loss/cross_entropy", "loss/kl_div")


@pytest.mark.parametrize("block", [32, 64], ids=["merge_without_cached_weights", "merge_with_cached_weights"])
def test_gqa_seed_merge_paths_on_cpu_emulator(block: int) -> None:
    """The hand-written GQA seed's split kernel (CLUSTER 0) and its last-block merge, both ways:
    with 32-position ranges the 1037-position shape has more ranges than a block caches weights
    for (the fallback). Its cluster path: tests/unit/test_attention_decode_seed.py."""
    from evolution.proposers.seeds import seed_dir

    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    spec = (SUITE / "decode/attention_decode_gqa_bf16.py", seed_dir() / "attention_decode_gqa_bf16.py",
            {"BLOCK": block, "CLUSTER": 0}, 3_000_000)
    (report,) = cuda_emu.run_candidates([spec], workers=1)
    assert report["ok"], report["reason"]
    assert {s["shape"] for s in report["shapes"]} >= {"small", "qwen_like", "mha_odd"}


@pytest.mark.parametrize("items", [2, 4])
def test_streaming_rows_with_several_vectors_in_flight(items: int, translations) -> None:  # noqa: ANN001
    """Streaming row modes load ITEMS vectors per operand before computing (more bytes in
    flight): every row family's block and warp variants stay exact with ITEMS > 1, including
    tails shorter than one step and rows that end inside a step."""
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    tmp = Path(tempfile.mkdtemp(prefix="rules-emu-items-"))
    specs, labels = [], []
    for name in ("normalization/layernorm", "normalization/groupnorm", "softmax/log_softmax", "loss/cross_entropy",
                 "reduction/argmax_dim", "decode/residual_rmsnorm_bf16"):
        for proposal in translations[name].proposals:
            if proposal.variant not in ("row/block", "row/warp", "row/block-twopass"):
                continue
            path = tmp / f"{name.replace('/', '__')}__{proposal.variant.replace('/', '_')}.py"
            path.write_text(proposal.source)
            params = {**_params(proposal), "ITEMS": items}
            specs.append((SUITE / f"{name}.py", path, params, DEFAULT_MAX_ELEMS))
            labels.append(f"{name} {proposal.variant}")
    assert len(specs) >= 10
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {label: r["reason"] for label, r in zip(labels, reports) if not r["ok"]}
    assert not bad, bad
