"""Rows kept in registers (the ``cached`` and ``warpcached`` row modes): every load of a pass is
issued before its computing (``RowGen.cached_loop``), so a weight's loads no longer wait behind
the previous vector's store. Checked on the CPU emulator for one- and two-phase rows, weights
and biases, bf16, rows that are not whole vectors and rows shorter than a thread's items,
with the cached kernel itself running (not the streaming fallback)."""

from __future__ import annotations

import os

import pytest

import cuda_emu
from test_extra_tasks import translate_cases

CASES = {
    "rmsnorm_weight": dict(init="self.w = nn.Parameter(torch.randn(1024))",
                           body="return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w",
                           inputs="[torch.randn(37, 1024)]"),
    "layernorm_affine_odd": dict(init="self.ln = nn.LayerNorm(1001)", body="return self.ln(x)",
                                 inputs="[torch.randn(29, 1001) * 2 + 1]"),
    "rmsnorm_block_rows": dict(init="self.w = nn.Parameter(torch.randn(4096))",
                               body="return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w",
                               inputs="[torch.randn(6, 4096)]"),
    "layernorm_block_rows_odd": dict(init="self.ln = nn.LayerNorm(3001)", body="return self.ln(x)",
                                     inputs="[torch.randn(5, 3001) - 1]"),
    "softmax_short": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(45, 77) * 3]"),
    "rmsnorm_bf16": dict(init="self.w = nn.Parameter(torch.randn(512))",
                         body="h = x.float()\nh = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)\n"
                              "return self.w * h.to(x.dtype)",
                         inputs="[torch.randn(33, 512)]", dtype="bfloat16"),
}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):  # noqa: ANN001, ANN201
    return translate_cases(tmp_path_factory.mktemp("row_cached"), CASES)


def _item_loops(kernel: str) -> list[str]:
    """The bodies of a kernel's ``for (int it ...)`` loops, by brace matching."""
    loops, at = [], 0
    while (at := kernel.find("for (int it = 0; it < ITEMS; ++it) {", at)) >= 0:
        depth, i = 0, kernel.index("{", at)
        for j in range(i, len(kernel)):
            depth += {"{": 1, "}": -1}.get(kernel[j], 0)
            if depth == 0:
                loops.append(kernel[i:j])
                break
        at = i
    return loops


def test_every_case_offers_a_cached_row_variant_with_its_loads_first(tasks) -> None:  # noqa: ANN001
    for name, (_, t) in tasks.items():
        p = next((p for p in t.proposals if p.variant.endswith("cached")), None)
        assert p is not None, (name, [q.variant for q in t.proposals])
        mode = p.variant.split("/")[1]
        kernel = p.source.split(f"rules_row0_{mode}(")[1].split("\n}\n")[0]
        loops = _item_loops(kernel)
        storing = [b for b in loops if "store_" in b]
        assert storing and not any("load_" in b for b in storing), name  # no load waits behind a store
        if name != "softmax_short":  # a weight: its loads in an item loop of their own, before the stores
            assert any("load_" in b and "store_" not in b and "c1[it]" not in b for b in loops), name


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_cached_rows_match_reference_on_cpu_emulator(tasks, tmp_path) -> None:  # noqa: ANN001
    """Every cached variant of every case at 64 threads a block: the row in whole thread items,
    then in twice as many (the last ones empty)."""
    specs, labels = [], []
    for name, (task, t) in tasks.items():
        for p in (p for p in t.proposals if "cached" in p.variant):
            cand = tmp_path / f"{name}_{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source)
            # a block's threads share a row in row/cached (4x the items at 64 threads instead of 256)
            items = p.default_params["ITEMS"] * (256 // 64 if p.variant.startswith("row/cached") else 1)
            for n in (items, 2 * items):
                specs.append((task, cand, dict(p.default_params, BLOCK=64, ITEMS=n, OCC=0), 3_000_000))
                labels.append(f"{name} [{p.variant}] ITEMS={n}")
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(labels, reports) if not r["ok"]}
    assert not bad
    fallback = {n: r["kernels"] for n, r in zip(labels, reports) if not all("cached" in k for k in r["kernels"])}
    assert not fallback  # the cached kernel ran, not the streaming kernel it falls back to
