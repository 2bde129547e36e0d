"""Rows cached in shared memory across a thread-block cluster (``kern_rowcluster``,
``row_cluster.cu``): multi-pass row families (softmax, log-softmax, LayerNorm, RMSNorm,
GroupNorm, two outputs, outputs written before and after the reductions, bf16) offer the
``cluster`` variant first from 4k elements, and match the reference on the CPU emulator,
which runs a cluster's blocks together, each with its own (poisoned) dynamic shared memory
that the others read through ``rules_map_rank``, with the split cluster barrier: CLUSTER 1, 2
and 8 (slices of one vector, empty slices on short rows), whole-vector rows (the cp.async
fill) and odd rows (the element-by-element fill), the online and the two-pass schedules
(one and two cluster exchanges per row). A row whose slices exceed the shared memory falls
back to the streaming block kernel. nvcc: no spills, no stack, at every block size and cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

import cuda_emu
from autotuner.candidate import cuda_sources
from autotuner.runtime.compile import define_options
from autotuner.tasks import load_task
from evolution.proposers.rules.emit import emit_module
from evolution.proposers.rules.variants import _row_defines, variants_for
from test_extra_tasks import translate_cases

_LN = "self.ln = nn.LayerNorm({shape})\nwith torch.no_grad():\n    self.ln.weight.uniform_(0.5, 1.5)\n" \
      "    self.ln.bias.uniform_(-0.5, 0.5)"
_RMS = "h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)\nreturn h * self.w"
CASES = {
    "softmax": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(5, 8192) * 3]"),
    "softmax_odd": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(3, 5003) * 3]"),
    "log_softmax": dict(body="return F.log_softmax(x, dim=-1)", inputs="[torch.randn(4, 6000)]"),
    "softmax_bf16": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(3, 8200, dtype=torch.bfloat16)]",
                         dtype="bfloat16"),
    "layernorm": dict(init=_LN.format(shape="8192"), body="return self.ln(x)", inputs="[torch.randn(4, 8192) + 1.0]"),
    "layernorm_3d_odd": dict(init=_LN.format(shape="[3, 41, 43]"), body="return self.ln(x)",
                             inputs="[torch.randn(3, 3, 41, 43) + 1.0]"),
    "rmsnorm": dict(iargs=", d=4100", init="self.w = nn.Parameter(1.0 + 0.1 * torch.randn(d))", body=_RMS,
                    inputs="[torch.randn(3, 4100)]", initin="[4100]"),
    "residual_layernorm": dict(fargs="x, r", body="h = x + r\nreturn F.layer_norm(h, (h.shape[-1],)), h",
                               inputs="[torch.randn(3, 4096), torch.randn(3, 4096)]"),
    "groupnorm": dict(init="self.gn = nn.GroupNorm(2, 4)\nwith torch.no_grad():\n    self.gn.weight.uniform_(0.5, 1.5)\n"
                           "    self.gn.bias.uniform_(-0.5, 0.5)", body="return self.gn(x)",
                      inputs="[torch.randn(2, 4, 64, 64)]"),
    "softmax_weighted_sum": dict(body="p = torch.softmax(x, -1)\nreturn (p * x).sum(-1)", inputs="[torch.randn(3, 4104)]"),
}
OTHER = {
    "sum": dict(body="return x.sum(dim=-1)", inputs="[torch.randn(64, 8192)]"),
    "argmax_softmax": dict(body="p = torch.softmax(x, -1)\nreturn p.argmax(-1)", inputs="[torch.randn(64, 8192)]"),
    "huge_row": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(2, 65536)]"),
    "mb_row": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(2, 262144)]"),  # 1 MB
    "two_mb_rows": dict(init="self.gn = nn.GroupNorm(2, 16)", body="return self.gn(x)",  # 8 x 256 x 256 fp32 a row
                        inputs="[torch.randn(160, 16, 256, 256)]"),  # traced on the meta device only
    # more rows than the emulator's 2 SMs keep clusters resident: PIPE's persistent grid loops
    "many_rows": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(96, 4096) * 3]"),
    "many_rows_odd": dict(body="return F.log_softmax(x, dim=-1)", inputs="[torch.randn(80, 3001)]"),
}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("rowcluster_tasks")
    return translate_cases(tmp, (CASES | OTHER))


def test_cluster_is_offered_for_multipass_rows(tasks) -> None:  # noqa: ANN001
    wrong = {n: [p.variant for p in t.proposals] for n, (_, t) in tasks.items()
             if n in CASES and not any(p.variant == "row/cluster" for p in t.proposals)}
    assert not wrong
    # second, after the streaming block kernel that measured faster on the H200 (variants.py)
    second = {n: t.proposals[1].variant for n, (_, t) in tasks.items() if n in ("softmax", "layernorm", "log_softmax")}
    assert set(second.values()) == {"row/cluster"}, second
    for name in ("sum", "argmax_softmax"):  # one pass already; argmax states are not exchanged
        assert not any(p.variant == "row/cluster" for p in tasks[name][1].proposals), name


def test_cluster_tunables_sized_from_the_row(tasks) -> None:  # noqa: ANN001
    p = next(p for p in tasks["huge_row"][1].proposals if p.variant == "row/cluster")
    assert p.default_params["CLUSTER"] == 4  # 256 KB rows: 64 KB slices
    assert set(p.params_space["CLUSTER"]) == {1, 2, 4, 8}
    # 1 MB rows: 8 blocks of 128 KB (one a SM); 16 searched (two 64 KB slices a SM)
    p = next(p for p in tasks["mb_row"][1].proposals if p.variant == "row/cluster")
    assert p.default_params["CLUSTER"] == 8 and p.params_space["CLUSTER"] == [1, 2, 4, 8, 16]
    assert "allow_nonportable_clusters(" in p.source
    # 2 MB rows fit no 8 blocks' shared memory: 16, last (one block a SM: GroupNorm's 2 MB rows
    # measured 2.6x slower than the split rows on the H200)
    p = tasks["two_mb_rows"][1].proposals[-1]
    assert p.variant == "row/cluster" and p.default_params["CLUSTER"] == 16
    assert tasks["mb_row"][1].proposals[-1].variant == "row/cluster"  # 128 KB slices: one block a SM too
    order = [p.variant for p in tasks["huge_row"][1].proposals]  # 64 KB slices: right after the split rows
    assert order[:2] == ["row/split", "row/cluster"], order
    p = next(p for p in tasks["layernorm"][1].proposals if p.variant == "row/cluster")
    assert p.default_params["CLUSTER"] == 1  # 32 KB rows: one block
    assert "max_dynamic_shared_size_bytes = self.rules_smem" in p.source
    assert "__cluster_dims__" not in p.source.split("SOURCE")[0]


def _specs(tasks, tmp_path, settings, names=None):  # noqa: ANN001, ANN201
    specs, labels = [], []
    for name, (task, t) in tasks.items():
        if names is not None and name not in names:
            continue
        p = next((p for p in t.proposals if p.variant == "row/cluster"), None)
        if p is None:
            continue
        cand = tmp_path / f"{name}.py"
        cand.write_text(p.source)
        for s in settings:
            specs.append((task, cand, dict(p.default_params, **s), 3_000_000))
            labels.append(f"{name} {s}")
    return specs, labels


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_cluster_rows_match_reference_on_cpu_emulator(tasks, tmp_path) -> None:  # noqa: ANN001
    settings = [dict(CLUSTER=1, BLOCK=64), dict(CLUSTER=2, BLOCK=128), dict(CLUSTER=8, BLOCK=32)]
    specs, labels = _specs(tasks, tmp_path, settings, set(CASES))
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(labels, reports) if not r["ok"]}
    assert not bad
    not_cluster = {n: r["kernels"] for n, r in zip(labels, reports) if r["kernels"] != ["rules_row0_cluster"]}
    assert not not_cluster  # the cluster kernel ran, never the fallback


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_pipelined_cluster_rows_match_reference_on_cpu_emulator(tasks, tmp_path) -> None:  # noqa: ANN001
    """PIPE 1: a persistent grid (the emulator's 2 SMs hold fewer clusters than the many-row
    tasks have rows, so each cluster loops), the next row's slices copied into the second
    buffer while this row computes; odd rows take the element-by-element fill, buffers
    alternating all the same."""
    settings = [dict(PIPE=1, CLUSTER=1, BLOCK=64), dict(PIPE=1, CLUSTER=2, BLOCK=128), dict(PIPE=1, CLUSTER=8, BLOCK=32)]
    names = {"softmax", "softmax_odd", "softmax_bf16", "layernorm", "rmsnorm", "residual_layernorm", "groupnorm",
             "many_rows", "many_rows_odd"}
    specs, labels = _specs(tasks, tmp_path, settings, names)
    assert len(specs) == 3 * len(names)
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(labels, reports) if not r["ok"]}
    assert not bad
    assert all(r["kernels"] == ["rules_row0_cluster"] for r in reports)


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_clusters_of_16_match_reference_on_cpu_emulator(tasks, tmp_path) -> None:  # noqa: ANN001
    """The non-portable size (rules_setup asks the driver; the emulator has none to ask and
    runs the cluster kernel): sixteen slices merged, plain and pipelined, even and odd rows."""
    settings = [dict(CLUSTER=16, BLOCK=32), dict(CLUSTER=16, BLOCK=64, PIPE=1)]
    names = {"softmax", "softmax_odd", "layernorm", "groupnorm", "many_rows"}
    specs, labels = _specs(tasks, tmp_path, settings, names)
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(labels, reports) if not r["ok"]}
    assert not bad
    assert all(r["kernels"] == ["rules_row0_cluster"] for r in reports), [r["kernels"] for r in reports]


def test_pipelined_grid_asks_the_driver_for_resident_clusters(tasks) -> None:  # noqa: ANN001
    p = next(p for p in tasks["many_rows"][1].proposals if p.variant == "row/cluster")
    assert "from autotuner.runtime import compile_module, allow_nonportable_clusters, max_active_clusters" in p.source
    assert p.default_params["PIPE"] == 0 and p.params_space["PIPE"] == [0, 1]  # searched, not the default yet
    assert "(1 + PIPE) *" in p.source  # both buffers counted in the shared memory asked for


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_row_too_long_for_shared_memory_falls_back(tasks, tmp_path) -> None:  # noqa: ANN001
    """256 KB rows: one block cannot cache them (CLUSTER 1: the streaming kernel), two can."""
    specs, labels = _specs(tasks, tmp_path, [dict(CLUSTER=1, BLOCK=128), dict(CLUSTER=2, BLOCK=128)], {"huge_row"})
    reports = cuda_emu.run_candidates(specs, workers=2)
    assert [r["ok"] for r in reports] == [True, True], [r["reason"] for r in reports]
    assert [r["kernels"] for r in reports] == [["rules_row0_block"], ["rules_row0_cluster"]]


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
@pytest.mark.parametrize("name", ["softmax", "layernorm", "softmax_weighted_sum"])
def test_cluster_two_pass_schedules_on_cpu_emulator(name: str, tasks, tmp_path) -> None:  # noqa: ANN001
    """Two-pass schedules (max then sum; mean then variance): two cluster exchanges per row,
    the merge scratch alternating between its two sets."""
    task_path, t = tasks[name]
    task = load_task(task_path)
    region = next(r for r in t.plan.regions if r.kind == "row")
    choice = {"mode": "cluster", "online": False, "var": "twopass"}
    defines, space = _row_defines(region, choice)
    base = variants_for(t.plan)[0]
    source = emit_module(task, t.plan, {**base.choices, region.index: choice}, defines, space, "row/cluster-twopass", [])
    assert source.count("rules_cluster_arrive();") >= 4
    cand = tmp_path / f"{name}_twopass.py"
    cand.write_text(source)
    specs = [(task_path, cand, dict(defines, BLOCK=64, CLUSTER=c), 3_000_000) for c in (1, 4)]
    reports = cuda_emu.run_candidates(specs, workers=2)
    assert not [r["reason"] for r in reports if not r["ok"]]
    assert all(r["kernels"] == ["rules_row0_cluster"] for r in reports)


def _resources(src: str, defines: dict, tmp_path, tag: str) -> dict[str, dict[str, int]]:
    cu = tmp_path / f"{tag}.cu"
    cu.write_text(src)
    proc = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", "--resource-usage", *define_options(defines),
                           str(cu), "-o", str(tmp_path / f"{tag}.cubin")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, current = {}, None
    for line in proc.stderr.splitlines():
        m = re.search(r"Function properties for (\w+)", line)
        if m:
            current = m.group(1)
            out[current] = {}
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and current:
            out[current].update(stack=int(m.group(1)), spills=int(m.group(2)) + int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m and current:
            out[current]["regs"] = int(m.group(1))
    return out


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("name", ["softmax", "softmax_bf16", "layernorm", "residual_layernorm", "groupnorm"])
def test_cluster_kernels_compile_for_sm90_without_spills(name: str, tasks, tmp_path) -> None:  # noqa: ANN001
    p = next(p for p in tasks[name][1].proposals if p.variant == "row/cluster")
    (src,) = cuda_sources(p.source)
    for cluster, block, pipe in ((1, 1024, 0), (2, 512, 0), (8, 128, 0), (16, 512, 0), (1, 1024, 1), (4, 256, 1)):
        res = _resources(src, dict(p.default_params, CLUSTER=cluster, BLOCK=block, PIPE=pipe), tmp_path,
                         f"{name}_{cluster}_{pipe}")
        k = res["rules_row0_cluster"]
        assert k["spills"] == 0 and k["stack"] == 0, (cluster, block, k)
        assert k["regs"] <= 64, (cluster, block, k)  # 1024 threads still fit one block per SM
