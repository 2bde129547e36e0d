"""The grouped-query attention seed (kernels/seeds/attention_decode_gqa_bf16.py), both paths:
the split kernel (CLUSTER 0) and the one-kernel cluster path (CLUSTER 1-8, the default).

* numerics on the CPU emulator (tests/unit/rules/cuda_emu.py) at the cache lengths the engine
  uses (1, 127, 128, 640 in a 768-position cache; 2047 in 2048: several chunks a block), with
  every row past a sequence's length NaN (a masked row must not reach the output, not even as
  0 * NaN), for Llama's head layout, 6 query heads of 128 (the cluster kernel's own group of
  6; the split kernel pads it to 8), 5 of 128 (padded to 6), and
  head_dim 72 (pieces past the row), across the cluster sizes and chunk depths;
* for sm_90 through nvcc where it is installed: no spills at the defaults, the cluster
  attributes and instructions in the PTX, every load of the kernel before's output after the
  PDL wait and through L2.

The GPU side (plain and PDL graph launches, the newest row written by the kernel before):
tests/deploy/test_attention_seed_gpu.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "kernels" / "seeds" / "attention_decode_gqa_bf16.py"
sys.path.insert(0, str(ROOT / "tests" / "unit" / "rules"))

import cuda_emu  # noqa: E402

# A copy of the suite task whose reference attends each sequence's written rows only (so the
# rows past it can be NaN) at lengths chosen per shape.
ENGINE_TASK = '''"""Attention decode at the engine's cache lengths; rows past a length are NaN (test copy)."""
import math

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k_cache, v_cache, cache_len):
        b, h, d = q.shape
        kvh = k_cache.shape[1]
        outs = []
        for i in range(b):
            n = int(cache_len[i])
            qf = q[i].float().view(kvh, h // kvh, d)
            k, v = k_cache[i, :, :n].float(), v_cache[i, :, :n].float()
            p = torch.softmax(torch.matmul(qf, k.transpose(-1, -2)) / math.sqrt(d), dim=-1)
            outs.append(torch.matmul(p, v).reshape(h, d))
        return torch.stack(outs).to(q.dtype)


num_heads = 32
num_kv_heads = 8
max_len = 768
head_dim = 64
lengths = [1, 127, 128, 640]


def get_inputs():
    b = len(lengths)
    q = torch.randn(b, num_heads, head_dim, dtype=torch.bfloat16)
    k = torch.randn(b, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    v = torch.randn(b, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    for i, n in enumerate(lengths):
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    return [q, k, v, torch.tensor(lengths, dtype=torch.int64)]


def get_init_inputs():
    return []


DTYPE = "bfloat16"
POLICY = "strict"
INPUT_DISTRIBUTIONS = []
SHAPES = [
    {"name": "long", "num_heads": 8, "num_kv_heads": 2, "max_len": 2048, "lengths": [2047, 129]},
    {"name": "group6_d128", "num_heads": 12, "num_kv_heads": 2, "max_len": 640, "head_dim": 128,
     "lengths": [640, 3]},
    {"name": "group5_d128", "num_heads": 10, "num_kv_heads": 2, "max_len": 200, "head_dim": 128,
     "lengths": [200, 77]},
    {"name": "mha_d72", "num_heads": 5, "num_kv_heads": 5, "max_len": 130, "head_dim": 72, "lengths": [130, 65]},
]
'''

# Emulated launch parameters (at most 256 threads a block: each is a fiber): the default cluster
# path at the emulator's block size, every cluster size (16: non-portable on sm_90; -1: chosen from
# the shapes), one to eight passes a chunk, and the split kernel.
# CHUNKS 1000: every shape on the cluster path (the loop over chunks runs where a block has several);
# CHUNKS 1: the longer caches go to the split kernel (both kernels in one run).
EMU_PARAMS = [
    {"CLUSTER": 8, "BLOCK": 128, "KP": 4, "CHUNKS": 1000},
    {"CLUSTER": 8, "BLOCK": 256, "KP": 4, "CHUNKS": 1000},
    {"CLUSTER": 4, "BLOCK": 64, "KP": 2, "CHUNKS": 1000},
    {"CLUSTER": 2, "BLOCK": 128, "KP": 8, "CHUNKS": 1000},
    {"CLUSTER": 1, "BLOCK": 128, "KP": 4, "CHUNKS": 1000},
    {"CLUSTER": 8, "BLOCK": 128, "KP": 4, "CHUNKS": 1},
    {"CLUSTER": 16, "BLOCK": 64, "KP": 2, "CHUNKS": 1000},
    {"CLUSTER": -1, "BLOCK": 64, "KP": 2, "CHUNKS": 1000},  # chosen: 8 on the emulator's 2 SMs
    {"CLUSTER": 8, "BLOCK": 128, "KP": 4, "CHUNKS": 1000, "QSPLIT": 2},  # query heads in slices: 6 -> 2 x 3
    {"CLUSTER": 2, "BLOCK": 64, "KP": 2, "CHUNKS": 1000, "QSPLIT": 4},   # 4 -> 4 x 1, 6 -> 3 x 2, 5 -> 1 x 5
    {"CLUSTER": 2, "BLOCK": 128, "CHUNKS": 1000, "QSPLIT": 2},  # KP chosen: 2 where sliced and head_dim <= 64
    {"CLUSTER": 0, "BLOCK": 128},
]


def _source() -> str:
    return SEED.read_text().split("SOURCE = r'''")[1].split("'''")[0]


def test_the_cluster_path_is_the_default_and_the_split_kernel_stays_selectable() -> None:
    from evolution.proposers.seeds import params_space

    space = params_space(SEED.read_text())
    assert space["CLUSTER"][0] == 0 and 8 in space["CLUSTER"] and set(space["KP"]) >= {0, 2, 4, 8}
    text = SEED.read_text()
    assert "CLUSTER: int = 8" in text and "BLOCK: int = 256" in text and "CHUNKS: int = 2" in text
    from autotuner.runtime import parse_kernels

    names = set(parse_kernels(_source()))
    assert {f"gqa_cluster_g{g}" for g in (1, 2, 4, 6, 8)} <= names and {f"gqa_decode_g{g}" for g in (1, 2, 4, 8)} <= names
    # the attention kernels and their fused attention + O-projection forms (attention_o_residual's seed)
    assert cuda_emu.cluster_sizes(_source(), {"CLUSTER": 4}) == {
        **{f"gqa_cluster{o}_g{g}": 4 for g in (1, 2, 4, 8) for o in ("", "_o")}, "gqa_cluster_g6": 4}


def test_clusters_of_16_where_few_kv_heads_would_leave_the_gpu_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import torch

    from evolution.proposers.seeds import seed_model

    cls = seed_model("attention_decode_gqa_bf16")
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a, **k: types.SimpleNamespace(multi_processor_count=132, major=9))
    attn = cls.__new__(cls)  # the choice alone: no module compiled
    dev = torch.device("cuda", 0)
    attn.cluster, attn.sms, attn.nonportable = -1, {}, {(16, 1, 4, dev): True}
    assert attn._cluster_size(1, 2, dev) == 16   # Qwen2.5-1.5B at batch 1: 2 clusters of 8 = 16 of 132 SMs
    assert attn._cluster_size(1, 8, dev) == 8    # Llama-3.2-1B: 64 SMs already
    assert attn._cluster_size(3, 2, dev) == 8    # 48 SMs: more than a quarter
    attn.nonportable = {(16, 1, 4, dev): False}       # the driver refused the non-portable size
    assert attn._cluster_size(1, 2, dev) == 8
    attn.cluster = 4
    assert attn._cluster_size(1, 2, dev) == 4    # a fixed CLUSTER is kept


def test_query_head_slices_and_passes_chosen_from_the_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """QSPLIT 0: as many slices of a KV head's query heads as keep every cluster resident (a
    divisor of the group); KP 0: two passes a chunk where sliced with head_dim <= 64, four where
    that would take more than CHUNKS chunks or otherwise."""
    import types

    import torch

    from evolution.proposers.seeds import seed_model

    cls = seed_model("attention_decode_gqa_bf16")
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a, **k: types.SimpleNamespace(multi_processor_count=132, major=9))
    attn = cls.__new__(cls)  # the choice alone: no module compiled
    attn.block, attn.kp, attn.max_chunks, attn.sms, attn.nonportable, attn.qsplit = 256, 0, 2, {}, {}, 0
    attn.clusters_ok = {}

    def plan(b, heads, kv_heads, d, length):
        return attn._cluster_plan(torch.zeros(b, heads, d, dtype=torch.bfloat16),
                                  torch.zeros(b, kv_heads, length, d, dtype=torch.bfloat16),
                                  torch.zeros(b, kv_heads, length, d, dtype=torch.bfloat16), 8)

    assert plan(1, 32, 8, 64, 768) == (2, 2)     # Llama-3.2-1B: 8 x 8 x 2 = 128 blocks of 132 SMs
    assert plan(1, 12, 2, 128, 768) == (6, 4)    # Qwen2.5-1.5B: 2 x 8 x 6 = 96
    assert plan(4, 32, 8, 64, 768) == (1, 4)     # batch 4: 256 blocks without slicing
    assert plan(1, 32, 8, 64, 4096) is None      # 512 positions a block: over two chunks even at KP 4
    assert plan(1, 32, 8, 64, 1536) == (2, 4)    # 192 a block: three chunks at KP 2, two at KP 4
    assert plan(1, 20, 4, 64, 768) == (1, 4)     # 5 heads a group, 4 x 8 x 5 > 132: no divisor fits
    attn.qsplit, attn.kp = 4, 8
    assert plan(1, 32, 8, 64, 768) == (4, 8)     # fixed: kept (two waves are the caller's choice)


def test_which_kernel_a_call_takes_follows_the_cluster_choice() -> None:
    """``uses_cluster_kernel`` (what the GPU tests and the step sweep ask) answers from the call's
    own cluster choice: the cluster kernel where a block's range fits in CHUNKS chunks, the split
    kernel for CLUSTER 0 or longer caches."""
    import torch

    from evolution.proposers.seeds import seed_model

    cls = seed_model("attention_decode_gqa_bf16")
    attn = cls.__new__(cls)  # the choice alone: no module compiled
    attn.block, attn.kp, attn.max_chunks, attn.sms, attn.nonportable, attn.qsplit = 256, 4, 2, {}, {}, 1
    q = torch.zeros(1, 12, 128, dtype=torch.bfloat16)
    short, long = torch.zeros(1, 2, 640, 128, dtype=torch.bfloat16), torch.zeros(1, 2, 4096, 128, dtype=torch.bfloat16)
    attn.cluster = 8
    assert attn.uses_cluster_kernel(q, short, short)    # 80 positions a block: 2 chunks of 64
    assert not attn.uses_cluster_kernel(q, long, long)  # 512 a block: 8 chunks, over CHUNKS
    attn.cluster = 0
    assert not attn.uses_cluster_kernel(q, short, short)


@pytest.mark.slow
def test_both_paths_match_the_reference_at_engine_lengths_on_cpu_emulator(tmp_path: Path) -> None:
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    task = tmp_path / "attention_engine_lengths.py"
    task.write_text(ENGINE_TASK)
    specs = [(task, SEED, params, 10_000_000) for params in EMU_PARAMS]
    reports = cuda_emu.run_candidates(specs, workers=4, timeout_s=600)
    bad = {str(p): r["reason"] for p, r in zip(EMU_PARAMS, reports) if not r["ok"]}
    assert not bad, bad
    for params, report in zip(EMU_PARAMS, reports):
        assert {s["shape"] for s in report["shapes"]} == {"default", "long", "group6_d128", "group5_d128", "mha_d72"}, params
        kernels = report["kernels"]
        if params["CLUSTER"] == 0:
            assert kernels and all(k.startswith("gqa_decode_g") for k in kernels), (params, kernels)
        elif params["CHUNKS"] == 1000:
            assert kernels and all(k.startswith("gqa_cluster_g") for k in kernels), (params, kernels)
        else:  # 768 positions: 2 chunks of 64 a block, the split kernel; 130 of head_dim 72: 1 chunk
            assert any(k.startswith("gqa_decode_g") for k in kernels), (params, kernels)
            assert "gqa_cluster_g1" in kernels, (params, kernels)


@pytest.mark.slow
def test_the_cluster_path_on_the_suite_task_shapes_on_cpu_emulator() -> None:
    """The task's own shapes (random lengths, one full sequence and one of length 1)."""
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    from autotuner.tasks import suite_dir

    params = [{"CLUSTER": 8, "BLOCK": 128, "KP": 4, "CHUNKS": 1000},
              {"CLUSTER": 2, "BLOCK": 64, "KP": 2, "CHUNKS": 1000}]
    reports = cuda_emu.run_candidates([(suite_dir() / "decode/attention_decode_gqa_bf16.py", SEED, p, 3_000_000)
                                       for p in params], workers=2)
    for p, report in zip(params, reports):
        assert report["ok"], (p, report["reason"])
        assert {s["shape"] for s in report["shapes"]} >= {"small", "qwen_like", "mha_odd"}
        assert all(k.startswith("gqa_cluster_g") for k in report["kernels"])


def _nvcc(tmp_path: Path, defines: dict[str, int], *flags: str) -> subprocess.CompletedProcess:
    cu = tmp_path / "attn.cu"
    cu.write_text(_source())
    d = [f"-D{k}={v}" for k, v in {"KEYS": 1, "VEC": 8, "MAXD": 128, **defines}.items()]
    return subprocess.run(["nvcc", "-arch=sm_90", "-std=c++17", *d, *flags, str(cu)], capture_output=True, text=True)


def _usage(log: str) -> dict[str, str]:
    """kernel -> its ptxas lines (properties, registers), from --resource-usage output."""
    found: dict[str, str] = {}
    name = None
    for line in log.splitlines():
        if "Function properties for" in line:
            name = line.rsplit(" ", 1)[-1]
            found[name] = line
        elif name and ("spill" in line or "registers" in line):
            found[name] += " " + line
    return found


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not on PATH")
@pytest.mark.parametrize("defines", [{"BLOCK": 256, "CLUSTER": 8, "KP": 4}, {"BLOCK": 128, "CLUSTER": 8, "KP": 8},
                                     {"BLOCK": 256, "CLUSTER": 4, "KP": 4}, {"BLOCK": 128, "CLUSTER": 0, "KP": 4},
                                     {"BLOCK": 256, "CLUSTER": 16, "KP": 4}],
                         ids=lambda d: "-".join(f"{k}{v}" for k, v in d.items()))
def test_compiles_for_sm90_without_spills_where_engines_run(defines: dict[str, int], tmp_path: Path) -> None:
    proc = _nvcc(tmp_path, defines, "-cubin", "--resource-usage", "-o", str(tmp_path / "k.cubin"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    usage = _usage(proc.stdout + proc.stderr)
    family = "gqa_decode_g" if defines["CLUSTER"] == 0 else "gqa_cluster_g"
    # Llama / Mistral / Qwen groups (1, 2, 4 query heads a KV head): no spills; 8 may spill at KP 8
    for g in (1, 2, 4):
        line = usage[f"{family}{g}"]
        assert " 0 bytes spill stores" in line and " 0 bytes spill loads" in line, line
    if defines == {"BLOCK": 256, "CLUSTER": 8, "KP": 4}:
        assert all(" 0 bytes spill stores" in usage[f"gqa_cluster_g{g}"] for g in (1, 2, 4, 8)), usage


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not on PATH")
def test_cluster_kernel_ptx_keeps_the_pdl_contract(tmp_path: Path) -> None:
    proc = _nvcc(tmp_path, {"BLOCK": 256, "CLUSTER": 8, "KP": 4}, "--ptx", "-o", "-")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ptx = proc.stdout
    body = ptx[ptx.index(".entry gqa_cluster_g4("):]
    body = body[:body.index("\n}\n")]
    assert ".explicitcluster" in body and ".reqnctapercluster 8, 1, 1" in body
    assert body.count("barrier.cluster.arrive.release.aligned;") == 2
    assert body.count("barrier.cluster.wait.acquire.aligned;") == 2
    assert "mapa.u64" in body and body.count("bar.sync") == 1  # one block barrier
    wait = body.index("griddepcontrol.wait;")
    before, after = body[:wait], body[wait:]
    # before the wait: the length and the first chunk's K and V pieces (read-only path), no q
    assert before.count("ld.global.nc.v4.u32") == 2 * 4 and "ld.global.nc.s64" in before
    assert "ld.global.cg" not in before
    # after it: nothing through the read-only path (q, the newest row, later chunks: L2)
    assert "ld.global.nc" not in after and "ld.global.cg.v4.u32" in after
    assert "griddepcontrol.launch_dependents;" in after


def test_the_attention_seed_builds_split_kernels_lazily_one_group_and_path_a_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """No module at construction (the split module of every group and path took NVRTC 21 s and
    most calls never take the split path); then one module per (padded group, row-load path),
    each built once."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_attention_lazy", SEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = []
    monkeypatch.setattr(module, "compile_module", lambda source, defines: built.append(defines) or object())
    model = module.ModelNew(BLOCK=128, CLUSTER=0)
    assert built == []
    for gg, vec in ((2, 1), (2, 1), (2, 0), (8, 1)):
        model._split_module(gg, vec)
    assert [(d["SPLIT_GG"], d["SPLIT_VPATH"], d["GQA_KERNELS"]) for d in built] == [(2, 8, 1), (2, 1, 1), (8, 8, 1)]


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not on PATH")
def test_a_split_module_holds_one_groups_kernel(tmp_path: Path) -> None:
    """SPLIT_GG 2 gives gqa_decode_g2 a body and the other groups' kernels none (their launchers
    stay, empty): far fewer instructions than SPLIT_GG 0's eight bodies."""
    cu = tmp_path / "k.cu"
    cu.write_text(_source())
    sizes = {}
    for gg, vpath in ((0, 0), (2, 8)):
        cubin = tmp_path / f"k{gg}.cubin"
        proc = subprocess.run(["nvcc", "-arch=sm_90", "--resource-usage", "-cubin", "-std=c++17", "-DGQA_KERNELS=1",
                               "-DBLOCK=128", f"-DSPLIT_GG={gg}", f"-DSPLIT_VPATH={vpath}", "-o", str(cubin), str(cu)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        sizes[gg] = cubin.stat().st_size
        log = proc.stdout + proc.stderr
        assert all(" 0 bytes spill" in line for line in log.splitlines() if "spill" in line), log
    assert sizes[2] < 0.4 * sizes[0], sizes
