"""Convolutions under the strict policy (KernelBench level 1's conv tasks and the options around
them): each case must translate to ``dconv`` regions (the rules' direct-convolution kernel, with
pointwise regions around it where the forward has elementwise ops), every variant must match
PyTorch on the CPU emulator at two shapes (sizes are read at run time, the window is compiled
in), and the sources must compile with nvcc for sm_90. The hybrid policy keeps its ``conv``
region (cuDNN); ``test_trace_plan`` pins those plans."""

from __future__ import annotations

import shutil

import pytest

import cuda_emu
from autotuner.candidate import cuda_sources
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from evolution.proposers.rules.codegen import I32_LIMIT
from test_extra_tasks import translate_cases, untranslated, write
from variant_checks import _nvcc, emulate_every_variant, nvcc_errors

# Two visible shapes: the kernels must take every size from the tensors, none from the trace.
_SHAPES = 'SHAPES = [{"name": "a", "L": %d}, {"name": "b", "L": %d}]'


def _conv(module: str, inputs: str, shapes: tuple[int, int], dtype: str = "float32",
          body: str = "return self.c(x)") -> dict:
    return dict(init=f"self.c = {module}", body=body, inputs=inputs, dtype=dtype,
                extra=f"L = {shapes[0]}\n" + _SHAPES % shapes)


_SEPARABLE = dict(init="self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)\n"
                       "self.pw = nn.Conv2d(4, 6, 1, bias=False)",
                  body="return self.pw(self.dw(x))", inputs="[torch.randn(2, 4, L, 11)]",
                  extra="L = 9\n" + _SHAPES % (9, 12))

_VARY = '{"name": "a", "CIN": 4, "COUT": 6}, {"name": "b", "CIN": 6, "COUT": 10}'

# name -> (task fields, the region kinds it plans to)
CASES = {
    "conv1d": (_conv("nn.Conv1d(3, 8, 5)", "[torch.randn(2, 3, L)]", (37, 30)), ["dconv"]),
    "conv1d_stride_pad_dilation": (_conv("nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=3, bias=False)",
                                         "[torch.randn(2, 4, L)]", (41, 28)), ["dconv"]),
    "conv2d_square": (_conv("nn.Conv2d(3, 8, 3, bias=False)", "[torch.randn(2, 3, L, L)]", (10, 13)), ["dconv"]),
    "conv2d_asymmetric": (_conv("nn.Conv2d(4, 6, (3, 5), stride=2, padding=(1, 2), dilation=2, bias=False)",
                                "[torch.randn(2, 4, L, 17)]", (13, 18)), ["dconv"]),
    "conv2d_bias": (_conv("nn.Conv2d(3, 5, 3, padding=1)", "[torch.randn(2, 3, L, 9)]", (8, 11)), ["dconv"]),
    # seven channels: the 4-channel blocks of the last group are partial
    "conv2d_odd_channels": (_conv("nn.Conv2d(3, 7, (2, 3), stride=(2, 1))", "[torch.randn(2, 3, L, 9)]", (9, 12)),
                            ["dconv"]),
    "conv2d_groups2": (_conv("nn.Conv2d(4, 6, 3, padding=1, groups=2)", "[torch.randn(2, 4, L, 9)]", (8, 11)),
                       ["dconv"]),
    "conv2d_depthwise": (_conv("nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4)", "[torch.randn(2, 4, L, 13)]",
                               (12, 15)), ["dconv"]),
    "conv2d_depthwise_multiplier": (_conv("nn.Conv2d(3, 6, 3, groups=3, bias=False)", "[torch.randn(2, 3, L, 10)]",
                                          (9, 12)), ["dconv"]),
    "depthwise_separable": (_SEPARABLE, ["dconv", "dconv"]),
    "conv3d": (_conv("nn.Conv3d(3, 4, (3, 2, 3), stride=(1, 2, 1), padding=1)", "[torch.randn(2, 3, L, 7, 6)]",
                     (5, 6)), ["dconv"]),
    "conv3d_dilation_groups": (_conv("nn.Conv3d(4, 4, 2, dilation=(1, 2, 2), groups=2, bias=False)",
                                     "[torch.randn(1, 4, L, 6, 7)]", (4, 6)), ["dconv"]),
    "conv_transpose1d": (_conv("nn.ConvTranspose1d(4, 3, 5, stride=2, padding=1, output_padding=1, dilation=2)",
                               "[torch.randn(2, 4, L)]", (17, 12)), ["dconv"]),
    "conv_transpose2d": (_conv("nn.ConvTranspose2d(4, 5, 3, stride=2, padding=1, output_padding=1)",
                               "[torch.randn(2, 4, L, 6)]", (5, 7)), ["dconv"]),
    "conv_transpose2d_groups": (_conv("nn.ConvTranspose2d(4, 6, (3, 4), stride=(2, 1), padding=(1, 0), groups=2, "
                                      "bias=False)", "[torch.randn(2, 4, L, 5)]", (6, 4)), ["dconv"]),
    "conv_transpose2d_dilation": (_conv("nn.ConvTranspose2d(3, 4, 3, stride=3, padding=2, dilation=2, "
                                        "output_padding=1)", "[torch.randn(1, 3, L, 5)]", (5, 4)), ["dconv"]),
    "conv_transpose3d": (_conv("nn.ConvTranspose3d(3, 4, 3, stride=2, padding=1, output_padding=(1, 0, 1))",
                               "[torch.randn(1, 3, L, 3, 4)]", (3, 4)), ["dconv"]),
    "conv2d_bf16": (_conv("nn.Conv2d(4, 6, 3, padding=1)", "[torch.randn(2, 4, L, 9, dtype=torch.bfloat16)]", (8, 11),
                          dtype="bfloat16"), ["dconv"]),
    "conv_transpose1d_f16": (_conv("nn.ConvTranspose1d(4, 4, 3, stride=2, groups=2)",
                                   "[torch.randn(2, 4, L, dtype=torch.float16)]", (15, 20), dtype="float16"), ["dconv"]),
    # elementwise ops after / before the convolution are pointwise regions of their own
    "conv2d_relu": (_conv("nn.Conv2d(3, 5, 3, padding=1)", "[torch.randn(2, 3, L, 9)]", (8, 11),
                          body="return torch.relu(self.c(x))"), ["dconv", "pointwise"]),
    "conv1d_of_scaled": (_conv("nn.Conv1d(3, 4, 3)", "[torch.randn(2, 3, L)]", (20, 25),
                               body="return self.c(x * 2.0 + 1.0)"), ["pointwise", "dconv"]),
    # padding='same' with an even window traces as a zero constant_pad_nd (after only), folded in
    "conv2d_same_even": (_conv("nn.Conv2d(3, 4, (4, 3), padding='same')", "[torch.randn(2, 3, L, 9)]", (8, 11)),
                         ["dconv"]),
    "conv1d_same_even_dilated": (_conv("nn.Conv1d(3, 4, 4, padding='same', dilation=3, bias=False)",
                                       "[torch.randn(2, 3, L)]", (20, 27)), ["dconv"]),
    "conv2d_zero_pad_before": (_conv("nn.Conv2d(3, 4, 3, stride=2)", "[torch.randn(2, 3, L, 9)]", (8, 11),
                                     body="return self.c(F.pad(x, (2, 0, 1, 3)))"), ["dconv"]),
    # an unbatched input ([C, *spatial]), and a transposed one
    "conv2d_unbatched": (_conv("nn.Conv2d(3, 4, 3, padding=1)", "[torch.randn(3, L, 9)]", (8, 11)), ["dconv"]),
    "conv_transpose1d_unbatched": (_conv("nn.ConvTranspose1d(3, 4, 3, stride=2)", "[torch.randn(3, L)]", (8, 11)),
                                   ["dconv"]),
    # channel counts that change with the shape (init inputs): read at run time too
    "conv2d_channels_vary": (dict(iargs=", cin, cout", init="self.c = nn.Conv2d(cin, cout, 3, padding=1, groups=2)",
                                  body="return self.c(x)", inputs="[torch.randn(2, CIN, 7, 9)]", initin="[CIN, COUT]",
                                  extra="CIN = 4\nCOUT = 6\nSHAPES = [" + _VARY + "]"), ["dconv"]),
    "conv_transpose2d_channels_vary": (dict(iargs=", cin, cout",
                                            init="self.c = nn.ConvTranspose2d(cin, cout, 3, stride=2, groups=2)",
                                            body="return self.c(x)", inputs="[torch.randn(2, CIN, 5, 4)]",
                                            initin="[CIN, COUT]", extra="CIN = 4\nCOUT = 6\nSHAPES = [" + _VARY + "]"),
                                       ["dconv"]),
    # the weight as a forward input (F.conv2d), no module
    "functional_conv2d": (dict(fargs="x, w", body="return F.conv2d(x, w, stride=2, padding=1)",
                               inputs="[torch.randn(2, 3, L, 9), torch.randn(4, 3, 3, 3)]",
                               extra="L = 9\n" + _SHAPES % (9, 12)), ["dconv"]),
    # an integer weight cast to float first: the cast is a pointwise region
    "conv1d_cast_weight": (dict(fargs="x, w", body="return F.conv1d(x, w.float(), padding=1)",
                                inputs="[torch.randn(2, 3, L), torch.randint(-2, 3, (4, 3, 3))]",
                                extra="L = 9\n" + _SHAPES % (9, 16)), ["pointwise", "dconv"]),
}
REFUSED = {
    # a padding mode other than zeros traces as its own padding op before the convolution
    "reflect_padding": (_conv("nn.Conv2d(3, 4, 3, padding=1, padding_mode='reflect')", "[torch.randn(2, 3, L, 9)]",
                              (8, 9)), "reflection_pad2d"),
    "conv_of_reshape": (dict(fargs="x, w", body="return F.conv1d(x.view(2, 3, -1), w)",
                             inputs="[torch.randn(2, 3, 4, 5), torch.randn(4, 3, 3)]"), "batched [N, C, *spatial]"),
    # a padding of ones is no zero padding the convolution could do itself
    "ones_padding": (dict(body="return self.c(F.pad(x, (1, 2), value=1.0))", init="self.c = nn.Conv1d(3, 4, 3)",
                          inputs="[torch.randn(2, 3, 9)]"), "fold only a zero padding"),
    "transposed_of_padded": (dict(body="return self.c(F.pad(x, (1, 2)))", init="self.c = nn.ConvTranspose1d(3, 4, 3)",
                                  inputs="[torch.randn(2, 3, 9)]"), "fold only a zero padding"),
}

# The forms of KernelBench level 1's 34 convolution tasks (our own module settings and sizes,
# large: they are traced on the meta device only): each must plan to dconv regions alone.
_N3, _T3 = "nn.Conv3d", "nn.ConvTranspose3d"
KB_FORMS = {
    "3d_square": (f"{_N3}(3, 16, 3)", "4, 3, 24, 24, 24"),
    "3d_asym_input": (f"{_N3}(3, 16, 3)", "4, 3, 16, 40, 24"),
    "3d_asym_kernel": (f"{_N3}(3, 16, (3, 5, 7))", "4, 3, 24, 24, 24"),
    "3d_asym_both": (f"{_N3}(3, 16, (3, 5, 7), stride=(1, 2, 1), padding=(1, 0, 3), dilation=(2, 1, 1))",
                     "4, 3, 12, 64, 40"),
    "3d_flat_kernel": (f"{_N3}(3, 16, (3, 3, 1))", "4, 3, 64, 64, 8"),
    "2d_square": ("nn.Conv2d(3, 32, 3)", "8, 3, 128, 128"),
    "2d_asym_input": ("nn.Conv2d(3, 32, 3)", "8, 3, 128, 96"),
    "2d_asym_kernel": ("nn.Conv2d(3, 32, (3, 5))", "8, 3, 128, 128"),
    "2d_dilated_padded": ("nn.Conv2d(3, 32, (3, 5), padding=(1, 2), dilation=(2, 1))", "8, 3, 128, 128"),
    "2d_pointwise": ("nn.Conv2d(3, 32, 1)", "8, 3, 128, 128"),
    "1d": ("nn.Conv1d(3, 32, 3)", "8, 3, 512"),
    "1d_dilated_strided": ("nn.Conv1d(3, 32, 3, stride=3, dilation=4, bias=True)", "8, 3, 512"),
    "dw_square": ("nn.Conv2d(3, 3, 3, groups=3)", "8, 3, 128, 128"),
    "dw_asym_kernel": ("nn.Conv2d(3, 3, (3, 1), groups=3, bias=False)", "8, 3, 128, 128"),
    "dw_asym_input": ("nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3)", "8, 3, 128, 96"),
    "dw_asym_both": ("nn.Conv2d(3, 3, (3, 7), groups=3)", "8, 3, 128, 96"),
    "t1d": ("nn.ConvTranspose1d(32, 3, 3)", "8, 32, 128"),
    "t1d_dilated": ("nn.ConvTranspose1d(3, 32, 5, dilation=3)", "8, 3, 256"),
    "t1d_padded_strided_dilated": ("nn.ConvTranspose1d(16, 32, 3, stride=2, padding=1, dilation=2)", "8, 16, 128"),
    "t2d_square": ("nn.ConvTranspose2d(16, 32, 3)", "8, 16, 64, 64"),
    "t2d_asym_kernel": ("nn.ConvTranspose2d(16, 32, (3, 5))", "8, 16, 64, 64"),
    "t2d_asym_input": ("nn.ConvTranspose2d(16, 32, 3)", "8, 16, 64, 96"),
    "t2d_asym_both": ("nn.ConvTranspose2d(16, 32, (3, 5), padding=(1, 2))", "8, 16, 32, 64"),
    "t2d_strided_grouped_padded_dilated": ("nn.ConvTranspose2d(16, 32, (3, 5), stride=(2, 3), padding=(1, 2), "
                                           "dilation=(2, 1), groups=4)", "8, 16, 32, 64"),
    "t2d_dilated_padded_strided": ("nn.ConvTranspose2d(16, 32, 3, stride=5, padding=1, dilation=2)", "8, 16, 32, 48"),
    "t3d_square": (f"{_T3}(16, 32, 3)", "4, 16, 16, 16, 16"),
    "t3d_asym_kernel": (f"{_T3}(16, 32, (3, 5, 7))", "4, 16, 16, 16, 16"),
    "t3d_asym_input": (f"{_T3}(16, 32, 3)", "4, 16, 8, 16, 32"),
    "t3d_strided_padded_grouped": (f"{_T3}(16, 32, (3, 5, 7), stride=2, padding=(1, 2, 3), output_padding=1, "
                                   "groups=4)", "4, 16, 8, 16, 24"),
    "t3d_square_strided_grouped": (f"{_T3}(16, 32, 3, stride=2, padding=3, groups=4, bias=True)",
                                   "4, 16, 12, 12, 12"),
    "t3d_padded_dilated_strided": (f"{_T3}(16, 32, 3, stride=2, padding=1, dilation=2)", "4, 16, 8, 16, 16"),
    "2d_bf16": ("nn.Conv2d(3, 32, 3, padding=1)", "8, 3, 128, 128"),
}


@pytest.mark.parametrize("name", sorted(KB_FORMS))
def test_kernelbench_conv_forms_translate(name: str, tmp_path) -> None:  # noqa: ANN001
    module, size = KB_FORMS[name]
    dtype = "bfloat16" if "bf16" in name else "float32"
    case = dict(init=f"self.c = {module}", body="return self.c(x)", dtype=dtype,
                inputs=f"[torch.randn({size}, dtype=torch.{dtype})]")
    t = translate(load_task(write(tmp_path, name, case)))
    assert t.proposals and [r.kind for r in t.plan.regions] == ["dconv"], t.notes


@pytest.fixture(scope="module")
def convs(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("conv")
    return translate_cases(tmp, CASES)


def test_every_conv_task_translates(convs) -> None:  # noqa: ANN001
    assert not untranslated(convs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_plans(name: str, convs) -> None:  # noqa: ANN001
    """dconv regions, their elementwise neighbours in pointwise regions; no PyTorch call."""
    _, t = convs[name]
    assert [r.kind for r in t.plan.regions] == CASES[name][1], t.plan.describe()
    for p in t.proposals:
        assert "F.conv" not in p.source and "torch.conv" not in p.source


def test_conv_variants(convs) -> None:  # noqa: ANN001
    """Channels per thread as the structural choice: 1 for depthwise, 4 first for wide groups."""
    labels = {name: [p.variant for p in t.proposals] for name, (_, t) in convs.items()}
    assert labels["conv2d_depthwise"] == ["dconv/direct"]
    assert labels["conv1d"] == ["dconv/cout4", "dconv/direct"]
    assert labels["conv2d_groups2"] == ["dconv/direct", "dconv/cout2"]
    assert labels["conv2d_bias"] == ["dconv/direct", "dconv/cout4"]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_conv_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and words in t.notes[-1], t.notes


def test_hybrid_conv_stays_in_cudnn(tmp_path) -> None:  # noqa: ANN001
    case = dict(_conv("nn.Conv2d(3, 5, 3, padding=1)", "[torch.randn(2, 3, L, 9)]", (8, 11),
                      body="return torch.relu(self.c(x))"), policy="hybrid")
    t = translate(load_task(write(tmp_path, "hybrid", case)))
    assert [r.kind for r in t.plan.regions] == ["conv", "pointwise"]
    assert t.proposals and all("F.conv2d(" in p.source for p in t.proposals)


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_conv_matches_reference_on_cpu_emulator(convs, tmp_path) -> None:  # noqa: ANN001
    """Every structural variant of every case, at both shapes the task lists."""
    bad, reports = emulate_every_variant(convs, tmp_path)
    assert not bad
    shapes = [sorted({s["shape"] for s in r["shapes"]}) for r in reports]
    assert all(len(s) >= 2 for s in shapes), shapes


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_conv_positions_per_thread_on_cpu_emulator(convs, tmp_path) -> None:  # noqa: ANN001
    """Each case's first variant with POS_PER_THREAD 4 (a searched tunable): every extent here
    leaves a partial last block of positions in some shape."""
    specs, names = [], []
    for name, (task, t) in convs.items():
        p = t.proposals[0]
        cand = tmp_path / f"{name}.py"
        cand.write_text(p.source)
        specs.append((task, cand, dict(p.default_params, BLOCK=128, POS_PER_THREAD=4), 3_000_000))
        names.append(name)
    reports = cuda_emu.run_candidates(specs, workers=2)
    assert not {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_conv_sources_compile_for_sm90(convs) -> None:  # noqa: ANN001
    """The conv template (each rank, dtype, transposed or not, bias or not), as nvcc sees it."""
    assert not nvcc_errors(convs)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_conv_corners_compile_for_sm90(convs) -> None:  # noqa: ANN001
    """The tunables all at their smallest and all at their largest (COUT_PER_THREAD 8, BLOCK 512)."""
    errors = {}
    for name in ("conv1d", "conv3d", "conv_transpose3d", "conv2d_bf16", "conv_transpose1d_f16"):
        p = convs[name][1].proposals[0]
        for pick in (min, max):
            params = dict(p.default_params, **{k: pick(v) for k, v in p.params_space.items()})
            for src in cuda_sources(p.source):
                error = _nvcc(src, params)
                if error:
                    errors[f"{name} {params}"] = error
    assert not errors


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_conv_64bit_index_kernels_on_cpu_emulator(convs, tmp_path) -> None:  # noqa: ANN001
    """The _i64 kernels (taken only past 2^30 elements, too large to emulate): forced here (with
    two positions a thread)."""
    specs, names = [], []
    for name in ("conv2d_asymmetric", "conv_transpose2d_groups", "conv3d", "depthwise_separable"):
        task, t = convs[name]
        for p in t.proposals:
            assert f"< {I32_LIMIT} else" in p.source
            cand = tmp_path / f"{name}__{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source.replace(f"< {I32_LIMIT} else", "< 0 else"))
            specs.append((task, cand, dict(p.default_params, BLOCK=128, POS_PER_THREAD=2), 3_000_000))
            names.append(f"{name} [{p.variant}]")
    reports = cuda_emu.run_candidates(specs, workers=2)
    assert not {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}
    assert all(any(k.endswith("_i64") for k in r["kernels"]) and not any(k.endswith("_i32") for k in r["kernels"]
                                                                         if "dconv" in k) for r in reports)
