"""Recorded compiles (autotuner/runtime/dry.py): what compile_module does while the evaluator
learns a candidate's modules from a dry run, without a GPU or a compiler."""

from __future__ import annotations

from autotuner.runtime import allow_nonportable_clusters, compile_module, dry, max_active_clusters, pdl_launch
from autotuner.runtime.pdl import launch_ex


def test_recording_returns_stand_ins_and_records_each_distinct_compile_once() -> None:
    with dry.recording() as units:
        a = compile_module("// src", defines={"NB": 1})
        again = compile_module("// src", defines={"NB": 1})
        wg = compile_module("// src", defines={"NB": 4}, arch="sm_90a")
        compile_module("// src", defines={"NB": 8}, options=("-O3",))  # compile_ahead builds default options only
        kernel = a.kernel("k")
        kernel.function.max_dynamic_shared_size_bytes = 100 * 1024  # what seeds set before a launch
        a.launch("k", grid=(1,), block=(32,), args=())
        kernel((1,), (32,))
        pdl_launch(a, "k", grid=(1,), block=(32,), args=())
        launch_ex(kernel, (1,), (32,), ())
        assert allow_nonportable_clusters(kernel) is None and max_active_clusters(kernel, 128, 0, 16) is None
    assert units == [("// src", {"NB": 1}, None), ("// src", {"NB": 4}, "sm_90a")]
    assert all(dry.is_dry(m) for m in (a, again, wg, kernel))
    assert kernel.function.max_dynamic_shared_size_bytes == 100 * 1024
    assert dry.record("// src", {}, None) is None  # recording is over


def test_recordings_nest_and_each_keeps_its_own_calls() -> None:
    with dry.recording() as outer:
        compile_module("// a")
        with dry.recording() as inner:
            compile_module("// b")
        compile_module("// c")
    assert [u[0] for u in outer] == ["// a", "// c"] and [u[0] for u in inner] == ["// b"]
