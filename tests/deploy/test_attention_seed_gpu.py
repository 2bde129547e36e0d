"""The grouped-query attention seed on the GPU, both paths: the split kernel (CLUSTER 0) and the
one-kernel cluster path (CLUSTER 1-8, the default).

* against an fp32 reference over each sequence's written rows, at the cache lengths an engine
  uses (1, 127, 128, 640, 2047, the full cache) in 768- and 2048-position caches, with every
  row past a length NaN; Llama's heads (32 over 8, head_dim 64), 12 over 2 of 128 (the group
  padded to 8), 5 of 72;
* in a CUDA graph, replayed at every length, plainly and with programmatic dependent launch
  behind a kernel that (after a 20 us spin, while the attention kernel has already started)
  writes q and the newest K and V rows, poisoned with NaN before each replay: the PDL contract
  (what the kernel before writes is read after griddepcontrol.wait, never a stale copy); the
  same bits as a plain launch on the final data; replaying again gives the same bits (the split
  kernel's counters reset);
* the fused decode path with this seed bound beside the other decode seeds (Llama layout,
  small widths): the fp32 parity contract with and without PDL.

Each test takes seconds; the file about a minute on an H200.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu]
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "kernels" / "seeds" / "attention_decode_gqa_bf16.py"
# CHUNKS 1000: every call here on the cluster path (the defaults, CHUNKS 2, send the longest
# caches of head_dim 128 to the split kernel).
VARIANTS = {
    "split": {"CLUSTER": 0, "BLOCK": 128},
    "defaults": {},  # CLUSTER 8, BLOCK 256, KP 4, CHUNKS 2
    "cluster8": {"CLUSTER": 8, "BLOCK": 256, "KP": 4, "CHUNKS": 1000},
    "cluster8_b128_kp8": {"CLUSTER": 8, "BLOCK": 128, "KP": 8, "CHUNKS": 1000},
    "cluster4": {"CLUSTER": 4, "BLOCK": 256, "KP": 4, "CHUNKS": 1000},
    "cluster2_kp2": {"CLUSTER": 2, "BLOCK": 128, "KP": 2, "CHUNKS": 1000},
    "cluster1": {"CLUSTER": 1, "BLOCK": 256, "KP": 8, "CHUNKS": 1000},
    "cluster8_qs2": {"CLUSTER": 8, "BLOCK": 256, "KP": 4, "CHUNKS": 1000, "QSPLIT": 2},
    "cluster8_qs4": {"CLUSTER": 8, "BLOCK": 256, "KP": 4, "CHUNKS": 1000, "QSPLIT": 4},
}
LAYOUTS = {"llama": (32, 8, 64), "g6_d128": (12, 2, 128), "mha_d72": (5, 5, 72)}
LENGTHS = (1, 127, 128, 640, 2047)

WRITER = r'''
// The kernel before attention in a decode step, reduced to what matters: it lets its dependents
// launch at once, spins (they run up to their griddepcontrol.wait meanwhile), then writes q and
// the newest K and V row (position lens[b] - 1) of every (batch, KV head).
extern "C" __global__ void append_newest(const unsigned short* __restrict__ q_src,
                                         const unsigned short* __restrict__ k_src,
                                         const unsigned short* __restrict__ v_src, const long long* __restrict__ lens,
                                         unsigned short* __restrict__ q, unsigned short* __restrict__ k,
                                         unsigned short* __restrict__ v, int group, int kv_heads, long long L, int D,
                                         long long spin_ns)
{
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < (unsigned long long)spin_ns);
    const long long bkv = blockIdx.x;
    const long long pos = lens[bkv / kv_heads] - 1;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        k[(bkv * L + pos) * D + i] = k_src[bkv * D + i];
        v[(bkv * L + pos) * D + i] = v_src[bkv * D + i];
    }
    for (int i = threadIdx.x; i < group * D; i += blockDim.x) q[bkv * group * D + i] = q_src[bkv * group * D + i];
}
'''


def seed_class() -> type:
    from evolution.proposers.seeds import seed_model

    return seed_model(SEED.stem)


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """fp32 attention over each sequence's written rows (the rows past it may be NaN)."""
    b, h, d = q.shape
    kvh = k.shape[1]
    outs = []
    for i, n in enumerate(lens.tolist()):
        qf = q[i].float().view(kvh, h // kvh, d)
        p = torch.softmax(torch.matmul(qf, k[i, :, :n].float().transpose(-1, -2)) / math.sqrt(d), dim=-1)
        outs.append(torch.matmul(p, v[i, :, :n].float()).reshape(h, d))
    return torch.stack(outs).to(q.dtype)


def inputs(layout: str, max_len: int, lens: list[int], seed: int = 0) -> tuple[torch.Tensor, ...]:
    heads, kvh, d = LAYOUTS[layout]
    g = torch.Generator(device="cuda").manual_seed(seed)
    b = len(lens)
    q = torch.randn(b, heads, d, generator=g, device="cuda").to(torch.bfloat16)
    k = torch.randn(b, kvh, max_len, d, generator=g, device="cuda").to(torch.bfloat16)
    v = torch.randn(b, kvh, max_len, d, generator=g, device="cuda").to(torch.bfloat16)
    for i, n in enumerate(lens):
        k[i, :, n:] = float("nan")
        v[i, :, n:] = float("nan")
    return q, k, v, torch.tensor(lens, dtype=torch.int64, device="cuda")


def tolerance() -> dict[str, float]:
    from autotuner.evaluator.compare import tolerances_for
    from autotuner.tasks import load_task, suite_dir

    task = load_task(suite_dir() / "decode/attention_decode_gqa_bf16.py")
    return tolerances_for(task.dtype, task.tolerance)


def check(out: torch.Tensor, ref: torch.Tensor, where: str) -> None:
    from autotuner.evaluator.compare import compare_outputs

    verdict = compare_outputs(out, ref, tolerance())
    assert verdict.ok, f"{where}: {verdict.reason}"


def takes_cluster_path(mod, q, k, v) -> bool:  # noqa: ANN001
    return mod.uses_cluster_kernel(q, k, v)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_the_reference_at_engine_cache_lengths(variant: str, layout: str) -> None:
    cls = seed_class()
    mod = cls(**VARIANTS[variant])
    for max_len in (768, 2048):
        lens = [n for n in LENGTHS if n < max_len] + [max_len]
        q, k, v, cache_len = inputs(layout, max_len, lens)
        if variant != "defaults":
            assert takes_cluster_path(mod, q, k, v) == (VARIANTS[variant]["CLUSTER"] > 0)
        elif layout == "llama":  # 2048 positions of head_dim 64: 2 chunks a block
            assert takes_cluster_path(mod, q, k, v)
        with torch.no_grad():
            out = mod(q, k, v, cache_len)
        torch.cuda.synchronize()
        check(out, reference(q, k, v, cache_len), f"{variant} {layout} max_len {max_len} lengths {lens}")
        again = mod(q, k, v, cache_len)  # the split kernel's counters were reset
        assert torch.equal(out, again)


@pytest.mark.parametrize("pdl", [False, True], ids=["graph", "graph+pdl"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_graph_replay_behind_the_kernel_that_appends_the_newest_row(variant: str, pdl: bool) -> None:
    from autotuner.runtime import compile_module, pdl_enabled, pdl_launch

    cls = seed_class()
    mod = cls(**VARIANTS[variant])
    writer = compile_module(WRITER)
    max_len, layout = 2048, "llama"
    heads, kvh, d = LAYOUTS[layout]
    group = heads // kvh
    q_true, k_true, v_true, _ = inputs(layout, max_len, [max_len], seed=1)  # the data once appended
    q, k, v = torch.empty_like(q_true), torch.empty_like(k_true), torch.empty_like(v_true)
    cache_len = torch.ones(1, dtype=torch.int64, device="cuda")
    # what the writer appends (fixed addresses: the graph keeps them)
    q_src, k_src, v_src = torch.empty_like(q_true), torch.empty_like(k_true[:, :, 0]), torch.empty_like(v_true[:, :, 0])

    def stage(n: int) -> None:
        """Length n: the sources hold the true q and row n - 1; the caches hold NaN from row n - 1 on
        (the newest row, not yet written, and the stale ones past it) and q is NaN."""
        cache_len.fill_(n)
        q_src.copy_(q_true)
        k_src.copy_(k_true[:, :, n - 1])
        v_src.copy_(v_true[:, :, n - 1])
        k.copy_(k_true)
        v.copy_(v_true)
        k[:, :, n - 1:] = float("nan")
        v[:, :, n - 1:] = float("nan")
        q.fill_(float("nan"))

    def step() -> torch.Tensor:
        pdl_launch(writer, "append_newest", grid=(kvh,), block=(128,),
                   args=(q_src, k_src, v_src, cache_len, q, k, v, group, kvh, max_len, d, 20_000))
        return mod(q, k, v, cache_len)

    stage(640)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), pdl_enabled(pdl):
        step()  # load both modules outside the capture
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pdl_enabled(pdl), torch.cuda.graph(graph):
        out = step()
    for n in (1, 127, 128, 640, 2047, 2048):
        stage(n)
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(q, q_true) and torch.equal(k[:, :, n - 1], k_true[:, :, n - 1])
        got = out.clone()
        lens = cache_len.clone()
        check(got, reference(q_true, k_true, v_true, lens), f"{variant} pdl={pdl} length {n}")
        plain = mod(q_true, k_true, v_true, lens)
        torch.cuda.synchronize()
        assert torch.equal(got, plain), f"{variant} pdl={pdl} length {n}: graph replay differs from a plain launch"
        stage(n)
        graph.replay()  # again at the same length: same bits (the split kernel's counters were reset)
        torch.cuda.synchronize()
        assert torch.equal(out, got), f"{variant} pdl={pdl} length {n}: a second replay differs"


@pytest.mark.parametrize("variant", ["split", "defaults"])
def test_fused_path_parity_with_the_attention_seed_bound(variant: str) -> None:
    from autotuner.deploy import LLAMA_3_2_1B, Slots, build_model, tiny_config
    from autotuner.deploy.bench import check_parity_fp32, parity_fp32_line
    from autotuner.deploy.slots import SlotBinding

    from engine_support import FUSED_SEEDS
    from evolution.proposers.seeds import seed_model

    params = {"attention_decode": VARIANTS[variant]}
    slots = Slots({slot: SlotBinding(slot, "seed, bound by the test", task=name, model_new=seed_model(name),
                                     params=dict(params.get(slot, {}))) for slot, name in FUSED_SEEDS.items()})
    cfg = tiny_config(LLAMA_3_2_1B, hidden_size=512, num_layers=3, num_heads=8, num_kv_heads=2, head_dim=64,
                      intermediate_size=1536, vocab_size=4096)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=slots)
    model.setup_caches(1, 256)
    paths = ("fused", "fused+graph", "fused+graph+pdl")
    report = check_parity_fp32(model, slots, paths=paths, prompt_len=100, steps=40)
    lines = [parity_fp32_line(f"llama {variant}", p, report[p], report["bf16"]["max_err"]) for p in paths]
    print("\n".join(lines))
    for path in paths:
        assert report[path]["ok_error"] and report[path]["ok_tokens"], lines
