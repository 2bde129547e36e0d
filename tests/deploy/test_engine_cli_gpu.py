"""``autotuner deploy bench`` on the real Llama-3.2-1B shapes with kernels from an archive filled
the honest way (``engine_support.tuned_archive``), every mode including torch.compile's.

Apart from test_engine_gpu.py so that a run with a worker per file (the GPU session's ``slow``
part) builds this archive and compiles the 1B model beside the engine's other tests.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_cli_deploy_bench_on_llama_shapes(tuned_archive, capsys) -> None:
    """The real Llama-3.2-1B shapes, a short run of every mode, through the CLI."""
    from autotuner.cli.main import main

    code = main(["deploy", "bench", "--db", tuned_archive.url, "--model", "llama-3.2-1b", "--prompt-len", "16",
                 "--decode-steps", "8", "--repeats", "1", "--no-record"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    for mode in ("eager", "tuned", "tuned+graph", "compile"):
        assert f" {mode} " in out
    assert "% of BW bound" in out and "parity llama-3.2-1b tuned+graph" in out
