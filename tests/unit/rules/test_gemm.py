"""Matrix products under the strict policy (KernelBench level 1, tasks 1-18, and the forms around
them): each case must translate to a ``gemm`` region (the rules' own tiled SIMT kernel, operands
read in place through their strides), with pointwise regions where the forward has elementwise
ops; every variant must match PyTorch on the CPU emulator at both shapes the task lists (the
second differs from the traced one: sizes and strides are read at run time), and the sources
must compile with nvcc for sm_90. Under the hybrid policy a 2-D GEMM still stays in cuBLAS."""

from __future__ import annotations

import shutil

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from test_extra_tasks import translate_cases, untranslated, write
from variant_checks import _nvcc, emulate_every_variant, nvcc_errors


def _mk(body: str, inputs: str, sizes: dict[str, tuple[int, int]], fargs: str = "a, b", dtype: str = "float32",
        **more: str) -> dict:
    """A task over module globals ``sizes`` (name -> (traced value, the second shape's value))."""
    extra = "".join(f"{k} = {v[0]}\n" for k, v in sizes.items())
    extra += "SHAPES = [{" + ", ".join(['"name": "other"'] + [f'"{k}": {v[1]}' for k, v in sizes.items()]) + "}]\n"
    return dict(body=body, inputs=inputs, fargs=fargs, dtype=dtype, extra=extra, **more)


_AB = "[torch.randn(M, K), torch.randn(K, N)]"
_MNK = {"M": (64, 37), "N": (48, 65), "K": (40, 23)}
CASES = {
    # square and rectangular (KernelBench 1, 2), irregular sizes, K = 1 (an outer product)
    "square": (_mk("return torch.matmul(a, b)", "[torch.randn(L, L), torch.randn(L, L)]", {"L": (64, 45)}), ["gemm"]),
    "rectangular": (_mk("return torch.matmul(a, b)", _AB, _MNK), ["gemm"]),
    "odd_333x129x77": (_mk("return a @ b", _AB, {"M": (333, 41), "N": (129, 130), "K": (77, 9)}), ["gemm"]),
    "k_one": (_mk("return a @ b", _AB, {"M": (37, 70), "N": (45, 20), "K": (1, 1)}), ["gemm"]),
    # transposed operands (KernelBench 16-18): read through their strides, no copy
    "transposed_a": (_mk("return torch.matmul(a.T, b)", "[torch.randn(K, M), torch.randn(K, N)]", _MNK), ["gemm"]),
    "transposed_b": (_mk("return torch.matmul(a, b.T)", "[torch.randn(M, K), torch.randn(N, K)]", _MNK), ["gemm"]),
    "transposed_both": (_mk("return torch.matmul(a.T, b.T)", "[torch.randn(K, M), torch.randn(N, K)]", _MNK),
                        ["gemm"]),
    # batched (KernelBench 3), 3-D tensor x matrix (10), 4-D tensor-matrix by einsum (11) and matmul
    "bmm": (_mk("return torch.bmm(a, b)", "[torch.randn(B, M, K), torch.randn(B, K, N)]",
                {"B": (3, 2), "M": (33, 20), "N": (17, 40), "K": (29, 12)}), ["gemm"]),
    "tensor3d_matrix": (_mk("return torch.matmul(a, b)", "[torch.randn(B, M, K), torch.randn(K, N)]",
                            {"B": (3, 2), "M": (21, 30), "N": (19, 33), "K": (25, 8)}), ["gemm"]),
    "einsum4d": (_mk("return torch.einsum('bijl,lk->bijk', a, b)", "[torch.randn(B, I, J, K), torch.randn(K, N)]",
                     {"B": (2, 3), "I": (3, 2), "J": (5, 7), "K": (17, 20), "N": (9, 6)}), ["gemm"]),
    "matmul4d": (_mk("return torch.matmul(a, b)", "[torch.randn(B, H, M, K), torch.randn(B, H, K, N)]",
                     {"B": (2, 1), "H": (3, 4), "M": (5, 9), "K": (17, 6), "N": (9, 11)}), ["gemm"]),
    # a batch broadcast from one operand (stride 0), a vector times a matrix, two products in a row
    "broadcast_batch": (_mk("return torch.matmul(a, b)", "[torch.randn(B, M, K), torch.randn(1, K, N)]",
                            {"B": (3, 2), "M": (21, 30), "N": (19, 33), "K": (25, 8)}), ["gemm"]),
    "vector_matrix": (_mk("return torch.matmul(a, b)", "[torch.randn(K), torch.randn(K, N)]",
                          {"K": (70, 33), "N": (90, 129)}), ["gemm"]),
    "chain": (_mk("return (a @ b) @ c", "[torch.randn(M, K), torch.randn(K, N), torch.randn(N, K)]", _MNK,
                  fargs="a, b, c"), ["gemm", "gemm"]),
    # matrix-vector (KernelBench 4) as a [K, 1] matrix and as a 1-D vector; small K (KernelBench 7)
    "matrix_vector": (_mk("return torch.matmul(a, b)", "[torch.randn(M, K), torch.randn(K, 1)]",
                          {"M": (70, 33), "K": (300, 129)}), ["gemm"]),
    "matrix_vector_1d": (_mk("return torch.mv(a, b)", "[torch.randn(M, K), torch.randn(K)]",
                             {"M": (70, 33), "K": (300, 129)}), ["gemm"]),
    "small_k": (_mk("return torch.matmul(a, b)", _AB, {"M": (200, 130), "N": (150, 97), "K": (32, 32)}), ["gemm"]),
    # a decode step's linear layer: a few rows times a [N, K] weight (the "wide" tile, split-K)
    "decode_linear_bf16": (dict(iargs=", k=300, n=200", init="self.w = nn.Parameter(torch.randn(n, k) * k ** -0.5)",
                                fargs="x", body="return F.linear(x, self.w)",
                                inputs="[torch.randn(M, 300, dtype=torch.bfloat16)]", initin="[300, 200]",
                                dtype="bfloat16", extra="M = 1\nSHAPES = [{\"name\": \"other\", \"M\": 3}]\n"),
                           ["gemm"]),
    # large K, small M and N: split-K (fp32 partial sums, added in a second pass)
    "large_k": (_mk("return torch.matmul(a, b)", _AB, {"M": (16, 9), "N": (16, 20), "K": (4000, 2500)}), ["gemm"]),
    # nn.Linear with bias + ReLU (the epilogue in a pointwise region), scale + residual
    "linear_bias_relu": (dict(iargs=", k=40, n=24", init="self.lin = nn.Linear(k, n)", fargs="x",
                              body="return torch.relu(self.lin(x))", inputs="[torch.randn(M, 40)]",
                              initin="[40, 24]", extra="M = 37\nSHAPES = [{\"name\": \"other\", \"M\": 70}]\n"),
                         ["gemm", "pointwise"]),
    "linear_3d_input": (dict(iargs=", k=40, n=24", init="self.lin = nn.Linear(k, n)", fargs="x",
                             body="return self.lin(x)", inputs="[torch.randn(2, M, 40)]", initin="[40, 24]",
                             extra="M = 13\nSHAPES = [{\"name\": \"other\", \"M\": 9}]\n"), ["gemm", "pointwise"]),
    "scale_residual": (_mk("return (a @ b) * 0.5 + c", "[torch.randn(M, K), torch.randn(K, N), torch.randn(M, N)]",
                           _MNK, fargs="a, b, c"), ["gemm", "pointwise"]),
    "relu_operand": (_mk("return torch.relu(a) @ b", _AB, _MNK), ["pointwise", "gemm"]),
    # half precision: fp32 accumulation, one rounding
    "bf16": (_mk("return a @ b", "[torch.randn(M, K, dtype=torch.bfloat16), torch.randn(K, N, dtype=torch.bfloat16)]",
                 _MNK, dtype="bfloat16"), ["gemm"]),
    "fp16_transposed_b": (_mk("return a @ b.T", "[torch.randn(M, K, dtype=torch.float16), "
                              "torch.randn(N, K, dtype=torch.float16)]", _MNK, dtype="float16"), ["gemm"]),
    # symmetric (KernelBench 13), triangular results (14, 15): the mask fused into the store
    "symmetric": (_mk("return a @ b", "[(lambda x: x + x.T)(torch.randn(L, L)), (lambda x: x + x.T)(torch.randn(L, L))]",
                      {"L": (70, 45)}), ["gemm"]),
    "triu_of_product": (_mk("return torch.triu(torch.matmul(a, b))",
                            "[torch.triu(torch.randn(L, L)), torch.triu(torch.randn(L, L))]", {"L": (150, 70)}),
                        ["gemm"]),
    "tril_of_product": (_mk("return torch.tril(a @ b, diagonal=-1)", _AB, {"M": (140, 33), "N": (70, 90),
                                                                          "K": (20, 11)}), ["gemm"]),
    # diag(A) @ B (KernelBench 12): a row scaling, elementwise
    "diag_times_matrix": (_mk("return torch.diag(a) @ b", "[torch.randn(N), torch.randn(N, M)]",
                              {"N": (64, 37), "M": (48, 65)}), ["pointwise"]),
}
REFUSED = {
    "integer": (_mk("return a @ b", "[torch.randint(0, 5, (M, K)), torch.randint(0, 5, (K, N))]", _MNK),
                "float32, bfloat16 or float16"),
    "diag_alone": (_mk("return torch.diag(a) * 2.0", "[torch.randn(N)]", {"N": (8, 9)}, fargs="a"),
                   "aten.diag_embed"),
}


@pytest.fixture(scope="module")
def gemms(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("gemm")
    return translate_cases(tmp, CASES)


def test_every_gemm_task_translates(gemms) -> None:  # noqa: ANN001
    assert not untranslated(gemms)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gemm_plans(name: str, gemms) -> None:  # noqa: ANN001
    _, t = gemms[name]
    assert [r.kind for r in t.plan.regions] == CASES[name][1], t.plan.describe()


def test_operands_are_read_in_place(gemms) -> None:  # noqa: ANN001
    """Transposes, flattenings and batch views become strides: no copy region, no torch view op."""
    for name in ("transposed_a", "transposed_b", "transposed_both", "tensor3d_matrix", "einsum4d", "matmul4d"):
        _, t = gemms[name]
        assert all(r.kind != "copy" for r in t.plan.regions)
        assert ".permute(" not in t.proposals[0].source and ".t()" not in t.proposals[0].source


def test_triangular_mask_is_fused(gemms) -> None:  # noqa: ANN001
    _, t = gemms["triu_of_product"]
    assert t.plan.regions[0].nodes[0].args["tri"] == ("triu", 0)
    _, t = gemms["tril_of_product"]
    assert t.plan.regions[0].nodes[0].args["tri"] == ("tril", -1)


def test_split_k_is_the_default_for_long_k(gemms) -> None:  # noqa: ANN001
    _, t = gemms["large_k"]
    assert t.proposals[0].default_params["GEMM_SPLITK"] > 1
    _, t = gemms["square"]
    assert "GEMM_SPLITK" in t.proposals[0].params_space


def test_every_searched_tile_compiles() -> None:
    """Every combination of each search space fits the kernel's static limits, and every
    default config lies in its space."""
    import itertools

    from evolution.proposers.rules.kern_gemm import SPACE_OF, SPACES, TILES

    keys = ("GEMM_BM", "GEMM_BN", "GEMM_BK", "GEMM_TM", "GEMM_TN")
    for space in SPACES.values():
        for bm, bn, bk, tm, tn in itertools.product(*(space[k] for k in keys)):
            threads = (bm // tm) * (bn // tn)
            assert bm % tm == 0 and bn % tn == 0 and 1 <= threads <= 1024, (bm, bn, tm, tn)
            assert 2 * bk * (bm + bn + 8) * 4 <= 48 * 1024 and bk % 8 == 0 and bm % 8 == 0 and bn % 8 == 0
    for mode, tile in TILES.items():
        assert all(v in SPACES[SPACE_OF[mode]][k] for k, v in zip(keys, tile)), mode


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_gemm_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and words in t.notes[-1], t.notes


def test_hybrid_gemm_stays_in_cublas(tmp_path) -> None:  # noqa: ANN001
    case = dict(iargs=", k=40, n=24", init="self.lin = nn.Linear(k, n)", fargs="x", body="return torch.relu(self.lin(x))",
                inputs="[torch.randn(37, 40)]", initin="[40, 24]", policy="hybrid")
    t = translate(load_task(write(tmp_path, "hybrid", case)))
    assert [r.kind for r in t.plan.regions] == ["mm", "pointwise"]


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_gemm_matches_reference_on_cpu_emulator(gemms, tmp_path) -> None:  # noqa: ANN001
    """Every structural variant (tile config) of every case, at both shapes."""
    bad, reports = emulate_every_variant(gemms, tmp_path)
    assert not bad
    assert all(len(r["shapes"]) >= 2 for r in reports)


@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_gemm_split_k_and_unaligned_paths_on_cpu_emulator(gemms, tmp_path) -> None:  # noqa: ANN001
    """Split-K forced on a short-K case, and tile shapes from the search space's corners."""
    picks = {"odd_333x129x77": dict(GEMM_SPLITK=4, GEMM_BK=8),
             "transposed_both": dict(GEMM_BM=32, GEMM_BN=16, GEMM_BK=32, GEMM_TM=8, GEMM_TN=2),
             "bf16": dict(GEMM_BM=64, GEMM_BN=128, GEMM_BK=16, GEMM_TM=8, GEMM_TN=4, GEMM_SPLITK=2),
             "bmm": dict(GEMM_SPLITK=2, GEMM_BK=8)}
    specs = []
    for name, params in picks.items():
        task, t = gemms[name]
        cand = tmp_path / f"{name}.py"
        cand.write_text(t.proposals[0].source)
        specs.append((task, cand, dict(t.proposals[0].default_params, **params), 3_000_000))
    reports = cuda_emu.run_candidates(specs, workers=2)
    bad = {n: r["reason"] for n, r in zip(picks, reports) if not r["ok"]}
    assert not bad


# one case per dtype, fused mask, tile config and epilogue (every source takes nvcc ~6 s)
_COMPILED = ("square", "large_k", "matrix_vector", "decode_linear_bf16", "fp16_transposed_b", "triu_of_product",
             "tril_of_product", "linear_bias_relu")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_gemm_sources_compile_for_sm90(gemms) -> None:  # noqa: ANN001
    assert not nvcc_errors({name: gemms[name] for name in _COMPILED})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_gemm_space_corners_compile_for_sm90(gemms) -> None:  # noqa: ANN001
    """Each search space with every tunable at its smallest, then at its largest choice."""
    from concurrent.futures import ThreadPoolExecutor

    from autotuner.candidate import cuda_sources

    jobs, spaces = [], set()
    for name in ("square", "bf16", "matrix_vector", "decode_linear_bf16"):
        for p in gemms[name][1].proposals:
            space = (p.variant.split("/")[1] in ("large", "medium"), repr(sorted(p.params_space.items())))
            if space in spaces:
                continue
            spaces.add(space)
            for pick in (min, max):
                params = dict(p.default_params, **{k: pick(v) for k, v in p.params_space.items()})
                jobs += [(f"{name} [{p.variant}] {pick.__name__}", src, params) for src in cuda_sources(p.source)]
    unique = {(src, tuple(sorted(params.items()))): label for label, src, params in jobs}
    with ThreadPoolExecutor(2) as pool:
        errors = dict(zip(unique.values(), pool.map(lambda key: _nvcc(key[0], dict(key[1])), unique)))
    assert not {k: e for k, e in errors.items() if e}
