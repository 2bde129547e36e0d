"""The decode step's input and output (autotuner/deploy/step_io.py) and the unrolled greedy
graph's contract, on the CPU: the PyTorch paths compute what the engine computed before the
kernels replaced them; an unroll that cannot be honoured is refused before anything runs.
On the GPU: tests/deploy/test_step_io_gpu.py."""

from __future__ import annotations

import pytest
import torch

from autotuner.deploy import LLAMA_3_2_1B, build_model, tiny_config
from autotuner.deploy.step_io import embed_and_lengths, feed_back


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("multiplier", [1.0, 12.0])
def test_embed_and_lengths_is_the_scaled_embedding_and_the_cache_length(dtype, multiplier) -> None:
    weight = torch.randn(50, 24).to(dtype)
    history = torch.tensor([[3, 7, 49], [0, 11, 2]])
    tokens = history[:, 1:2]  # a column of a wider buffer, as the unrolled graph passes it
    x, cache_len = embed_and_lengths(tokens, torch.tensor([9]), weight, multiplier)
    expected = torch.nn.functional.embedding(torch.tensor([7, 11]), weight) * multiplier
    assert x.dtype == dtype and torch.equal(x, expected)
    assert cache_len.tolist() == [10, 10] and cache_len.is_contiguous()


def test_feed_back_writes_the_column_and_advances_the_position() -> None:
    history = torch.zeros(3, 4, dtype=torch.long)
    position = torch.tensor([5])
    feed_back(torch.tensor([[4], [5], [6]]), history, 2, position)
    assert history[:, 2].tolist() == [4, 5, 6] and history[:, [0, 1, 3]].abs().sum() == 0
    assert position.tolist() == [6]


@pytest.mark.parametrize("unroll, greedy", [(0, True), (-1, True), (2, False)])
def test_graph_decoder_refuses_an_unroll_it_cannot_honour(unroll, greedy) -> None:
    from autotuner.deploy.generate import GraphDecoder

    model = build_model(tiny_config(LLAMA_3_2_1B), dtype=torch.float32, device="cpu")
    with pytest.raises(ValueError, match=f"unroll={unroll}"):
        GraphDecoder(model, greedy=greedy, unroll=unroll)


class _ChunkedMode:
    """A bench mode whose greedy step returns ``unroll`` tokens a call (as the unrolled graph)."""

    def __init__(self, unroll: int) -> None:
        self.model = build_model(tiny_config(LLAMA_3_2_1B), dtype=torch.float32, device="cpu")
        self.model.setup_caches(1, 64)
        self.unroll, self.calls = unroll, []

    def prefill_fn(self):
        return lambda prompt: torch.zeros(prompt.shape[0], prompt.shape[1], 10)

    def greedy_step(self):
        def step(token: torch.Tensor, position: int) -> torch.Tensor:
            self.calls.append((int(token[0, 0]), position))
            return torch.arange(position, position + self.unroll).view(1, -1)

        return step


def test_bench_run_consumes_unrolled_chunks_and_refuses_a_non_divisor() -> None:
    from autotuner.deploy.bench import _run

    mode = _ChunkedMode(4)
    _run(mode, torch.zeros(1, 5, dtype=torch.long), 12)
    # three replays, each fed the last token of the one before at the position after its chunk
    assert mode.calls == [(0, 5), (8, 9), (12, 13)]
    with pytest.raises(ValueError, match="positive divisor of the 10 decode steps"):
        _run(mode, torch.zeros(1, 5, dtype=torch.long), 10)


@pytest.mark.parametrize("unroll", ["0", "3"])
def test_deploy_bench_refuses_an_unroll_that_does_not_divide_the_steps(capsys, tmp_path, unroll) -> None:
    from autotuner.cli.main import main

    assert main(["deploy", "bench", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--decode-steps", "128",
                 "--unroll", unroll]) == 1
    err = capsys.readouterr().err
    assert f"--unroll {unroll}: must be a positive divisor of --decode-steps (128)" in err


def test_deploy_bench_refuses_an_unknown_prefill_form(capsys, tmp_path) -> None:
    from autotuner.cli.main import main

    with pytest.raises(SystemExit):
        main(["deploy", "bench", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--prefill-form", "fastest"])
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


def test_bench_modes_take_the_prefill_form_asked_for() -> None:
    from autotuner.deploy.bench import _Mode

    model = build_model(tiny_config(LLAMA_3_2_1B), dtype=torch.float32, device="cpu")
    assert _Mode(model, model.slots, "fused+graph+pdl", prefill_form="slots").prefill_form_wanted == "slots"
    assert _Mode(model, model.slots, "compile").prefill_form_wanted == "auto"
    assert _Mode(model, model.slots, "eager").prefill_form(128) == ""  # no graphed prefill: nothing to say
