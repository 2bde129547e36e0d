"""The decode step's two kernels (autotuner/deploy/step_io.py) on the GPU: the same bits as
PyTorch's embedding times the multiplier, for every dtype and for rows that take the byte
path; the feedback column and position; launched plainly and as programmatic dependents in a
CUDA graph; a token outside the vocabulary stops the kernel instead of reading past the table."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from autotuner.deploy.step_io import embed_and_lengths, feed_back

pytestmark = [pytest.mark.gpu]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("multiplier", [1.0, 12.0, 0.3])
@pytest.mark.parametrize("hidden", [2048, 1539, 7])  # 16-byte rows, and rows the byte copy takes
def test_step_in_is_the_scaled_embedding(dtype, multiplier, hidden) -> None:
    gen = torch.Generator("cuda").manual_seed(hidden)
    weight = torch.randn(1000, hidden, device="cuda", generator=gen).to(dtype)
    history = torch.tensor([[3, 999, 0], [0, 7, 5], [998, 1, 2]], device="cuda")
    tokens = history[:, 1:2]  # strided: a column of the unrolled graph's history
    x, cache_len = embed_and_lengths(tokens, torch.tensor([41], device="cuda"), weight, multiplier)
    expected = torch.nn.functional.embedding(tokens[:, 0], weight)
    if multiplier != 1.0:
        expected = expected * multiplier
    torch.cuda.synchronize()
    assert torch.equal(x, expected)
    assert cache_len.tolist() == [42, 42, 42]


@pytest.mark.parametrize("pdl", [False, True], ids=["graph", "graph+pdl"])
def test_step_kernels_in_a_graph_feed_each_other(pdl) -> None:
    """step_out's column is the next step_in's input; the position advances on the device."""
    from autotuner.runtime.pdl import pdl_enabled

    weight = torch.randn(100, 64, device="cuda", dtype=torch.bfloat16)
    history = torch.zeros(2, 3, dtype=torch.long, device="cuda")
    position = torch.tensor([10], device="cuda")
    outs = []
    graph = torch.cuda.CUDAGraph()
    with pdl_enabled(pdl), torch.cuda.graph(graph):
        for i in range(3):
            tokens = history[:, 2:3] if i == 0 else history[:, i - 1 : i]
            x, cache_len = embed_and_lengths(tokens, position, weight, 2.0)
            chosen = (x.float().sum(dim=-1).abs() * 1000).long() % 100  # a token that depends on x
            feed_back(chosen, history, i, position)
            outs.append((x, cache_len))
    history[:, 2] = torch.tensor([4, 9], device="cuda")
    graph.replay()
    torch.cuda.synchronize()
    token, pos = torch.tensor([4, 9], device="cuda"), 10
    for i, (x, cache_len) in enumerate(outs):
        expected = weight[token] * 2.0
        assert torch.equal(x, expected) and cache_len.tolist() == [pos + 1, pos + 1]
        token = (expected.float().sum(dim=-1).abs() * 1000).long() % 100
        assert history[:, i].tolist() == token.tolist()
        pos += 1
    assert position.tolist() == [13]


def test_step_in_stops_on_a_token_outside_the_vocabulary(tmp_path) -> None:
    script = textwrap.dedent("""
        import torch
        from autotuner.deploy.step_io import embed_and_lengths
        weight = torch.randn(10, 32, device="cuda", dtype=torch.bfloat16)
        x, _ = embed_and_lengths(torch.tensor([[10]], device="cuda"), torch.tensor([0], device="cuda"), weight)
        torch.cuda.synchronize()
        print("NO ERROR")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "NO ERROR" not in done.stdout, done.stdout + done.stderr
    assert "CUDA" in done.stderr or "cuda" in done.stderr, done.stderr[-2000:]
