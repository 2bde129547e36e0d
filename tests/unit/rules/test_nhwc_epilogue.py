"""A hybrid task's convolution epilogue in channels_last order (``kern_pointwise.nhwc_conv``): the
variant exists exactly where the epilogue writes over the convolution's result and reads only
per-channel values beside it; its kernel matches PyTorch on the CPU emulator (odd channel counts
take the scalar path, multiples of four the vector path), passes the evaluator's op watch (the
weight's layout changes at setup, not in the forward) and compiles for sm_90."""

from __future__ import annotations

import pytest
import torch

import cuda_emu
from test_extra_tasks import translate_cases
from variant_checks import _nvcc, emulate_variants

_SHAPES = 'SHAPES = [{"name": "a", "CIN": %d, "C": %d, "L": %d}, {"name": "b", "CIN": %d, "C": %d, "L": %d}]'


def _hybrid(init: str, body: str, inputs: str = "[torch.randn(2, CIN, L, 9)]", fargs: str = "x",
            shapes: tuple = (3, 8, 10, 3, 11, 7)) -> dict:
    """Channels reach the module as init arguments, so each shape builds its own."""
    return dict(init=init, body=body, inputs=inputs, fargs=fargs, policy="hybrid", iargs=", cin, c",
                initin="[CIN, C]", extra=f"CIN = {shapes[0]}\nC = {shapes[1]}\nL = {shapes[2]}\n" + _SHAPES % shapes)


CASES = {  # name -> (task fields, whether the NHWC variant is offered)
    "scale_shift_relu": (_hybrid("self.c = nn.Conv2d(cin, c, 3, padding=1, bias=False)\n"
                                 "self.s = nn.Parameter(torch.rand(c) + 0.5)\nself.b = nn.Parameter(torch.randn(c))",
                                 "y = self.c(x)\nreturn torch.relu(y * self.s.view(1, -1, 1, 1) + self.b.view(1, -1, 1, 1))"),
                         True),
    "bias_gelu": (_hybrid("self.c = nn.Conv2d(cin, c, (3, 2), stride=(2, 1))", "return F.gelu(self.c(x))"), True),
    "bias_scalar_sigmoid": (_hybrid("self.c = nn.Conv2d(cin, c, 2)", "return torch.sigmoid(self.c(x) * 0.5 - 1.0)"),
                            True),
    # one input channel at the second shape, a 1x1 window at both: a channels_last weight is
    # the same memory as an NCHW one there, cuDNN returns NCHW, and the NCHW kernel runs
    "ambiguous_layouts": (_hybrid("self.c = nn.Conv2d(cin, c, 1)", "return torch.relu(self.c(x))",
                                  shapes=(4, 8, 10, 1, 12, 7)), True),
    # a full-size operand beside the convolution's result: read in NCHW order, so no variant
    "add_input": (_hybrid("self.c = nn.Conv2d(cin, c, 3, padding=1)", "return torch.sigmoid(self.c(x) + a)",
                          inputs="[torch.randn(2, CIN, L, 9), torch.randn(2, C, L, 9)]", fargs="x, a"), False),
    # the convolution's result is returned too: the epilogue cannot write over it
    "result_returned": (_hybrid("self.c = nn.Conv2d(cin, c, 3, padding=1)",
                                "y = self.c(x)\nreturn y, torch.relu(y)"), False),
    # the weight is an input, not a parameter the setup can lay out
    "weight_input": (_hybrid("", "return torch.relu(F.conv2d(x, w, padding=1))",
                             inputs="[torch.randn(2, CIN, L, 9), torch.randn(C, CIN, 3, 3)]", fargs="x, w"), False),
    # a 1-D convolution: no channels_last for 3-D tensors
    "conv1d": (_hybrid("self.c = nn.Conv1d(3, C, 3)", "return torch.relu(self.c(x))",
                       inputs="[torch.randn(2, CIN, L)]"), False),
}


@pytest.fixture(scope="module")
def hybrids(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("nhwc")
    return translate_cases(tmp, CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_nhwc_variant_is_offered_exactly_where_it_applies(name: str, hybrids) -> None:  # noqa: ANN001
    _, t = hybrids[name]
    labels = [p.variant for p in t.proposals]
    assert labels, t.notes
    assert ("pointwise/vec-nhwc" in labels) == CASES[name][1], labels
    if CASES[name][1]:
        assert labels[:2] == ["pointwise/vec", "pointwise/vec-nhwc"]  # measured beside the NCHW epilogue


def test_the_nhwc_source_lays_out_the_weight_at_setup_and_checks_the_result(hybrids) -> None:  # noqa: ANN001
    _, t = hybrids["scale_shift_relu"]
    nhwc = next(p for p in t.proposals if p.variant.endswith("nhwc")).source
    setup, forward = nhwc.split("def forward", 1)
    assert "self.c.weight.data = self.c.weight.data.contiguous(memory_format=torch.channels_last)" in setup
    assert "is_contiguous(memory_format=torch.channels_last)" in forward
    assert "memory_format" not in forward.replace("is_contiguous(memory_format=torch.channels_last)", "")
    assert "rules_pointwise1_cl_i32" in forward and "rules_pointwise1_i32" in forward  # both orders
    plain = t.proposals[0].source
    assert "channels_last" not in plain


def test_loading_weights_keeps_the_channels_last_layout() -> None:
    """What the evaluator (and a user) do after construction: ``.to()`` and a state dict."""
    conv = torch.nn.Conv2d(3, 8, 3)
    conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    conv = conv.to(dtype=torch.float32)
    conv.load_state_dict(torch.nn.Conv2d(3, 8, 3).state_dict())
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    y = conv(torch.randn(2, 3, 9, 9))
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_nhwc_epilogues_match_pytorch_on_the_cpu_emulator(hybrids, tmp_path) -> None:  # noqa: ANN001
    """Both shapes of each case: 8 channels (the vector path) and 11 (scalar: 11 % VEC != 0)."""
    bad, reports, names = emulate_variants(hybrids, tmp_path, lambda p: p.variant.endswith("nhwc"),
                                           lambda p: dict(p.default_params, BLOCK=128))
    assert len(names) == 4
    assert not bad
    assert all(len({s["shape"] for s in r["shapes"]}) >= 2 for r in reports), [r["shapes"] for r in reports]


@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_nhwc_kernels_compile_for_sm90(hybrids) -> None:  # noqa: ANN001
    from autotuner.candidate import cuda_sources

    for name, (_, t) in hybrids.items():
        for p in t.proposals:
            if p.variant.endswith("nhwc"):
                for src in cuda_sources(p.source):
                    assert _nvcc(src, p.default_params) is None, name
