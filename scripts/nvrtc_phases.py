"""Where NVRTC's time goes: front end, NVVM optimizer, PTX to SASS (ptxas), per source.

Uses NVRTC's own ``--time`` report through CuPy's NVRTC binding, with the options CuPy's RawModule
passes; needs CuPy, no GPU. Sources: the doctor's tiny kernel, a rule candidate for softmax
(kernels/templates/common.cu prepended) and the decode_gemv_bf16 seed.

    python scripts/nvrtc_phases.py [--arch sm_90] [--repeats 5] [--extra=--minimal]
"""

from __future__ import annotations

import argparse
import csv
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sources() -> dict[str, tuple[str, dict]]:
    """name -> (CUDA source, defines)."""
    from autotuner.runtime.latency import _TEMPLATE
    from autotuner.tasks import load_task
    from evolution.proposers.rules import translate

    rule = translate(load_task(str(ROOT / "kernels/tasks/softmax/softmax.py")), max_variants=2).proposals[0]
    seed = (ROOT / "kernels/seeds/decode_gemv_bf16.py").read_text()
    return {
        "tiny (doctor)": (_TEMPLATE.format(token="phases"), {}),
        "rule softmax": (rule.source.split("SOURCE = r'''", 1)[1].split("'''", 1)[0], rule.default_params),
        "seed gemv": (seed.split("SOURCE = r'''", 1)[1].split("'''", 1)[0],
                      {"NB": 1, "UPW": 1, "UNROLL": 4, "WARPS": 4, "PREFETCH": 1}),
    }


def compile_phases(source: str, options: list[str], want_cubin: bool) -> dict[str, float]:
    """One NVRTC compile -> {phase: ms, "total": wall ms, "bytes": output size}."""
    from cupy_backends.cuda.libs import nvrtc

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "time.csv"
        prog = nvrtc.createProgram(f"// {secrets.token_hex(8)}\n" + source, "kern.cu", (), ())
        try:
            start = time.perf_counter()
            nvrtc.compileProgram(prog, [*options, f"--time={report}"])
            total = (time.perf_counter() - start) * 1e3
            image = nvrtc.getCUBIN(prog) if want_cubin else nvrtc.getPTX(prog)
        finally:
            nvrtc.destroyProgram(prog)
        rows = [r for r in csv.reader(report.open()) if len(r) >= 3 and r[0] != "File name"]
    phases = {r[1].strip(): float(r[2]) for r in rows}
    return {**phases, "total": total, "bytes": float(len(image))}


def main() -> int:
    from autotuner.runtime.compile import DEFAULT_OPTIONS, define_prelude

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_90", help="sm_XX: cubin, as CuPy asks; compute_XX: PTX")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--extra", action="append", default=[], help="another NVRTC option to try")
    args = parser.parse_args()
    options = [*DEFAULT_OPTIONS, "-ftz=true", f"-arch={args.arch}", "--device-as-default-execution-space",
               *args.extra]
    print(f"options {' '.join(options)}")
    for name, (source, defines) in sources().items():
        text = define_prelude(defines) + source
        compile_phases(text, options, args.arch.startswith("sm_"))  # warm
        runs = [compile_phases(text, options, args.arch.startswith("sm_")) for _ in range(args.repeats)]
        medians = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}
        print(f"{name:14s} " + "  ".join(f"{k} {v:.0f}" for k, v in medians.items()) + "  (ms, median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
