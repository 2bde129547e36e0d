"""scripts/decode_ncu_digest.py reads Nsight Compute's CSV (units as ncu writes them, a preamble
before the header) and splits one kernel that serves two slots (O and down) by its bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = ('"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size",'
          '"Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"')


def _row(kid: int, name: str, metric: str, unit: str, value: str) -> str:
    return (f'"{kid}","1","python3","h","{name}","1","7","(128, 1, 1)","(512, 1, 1)","0","9.0",'
            f'"Command line profiler metrics","{metric}","{unit}","{value}"')


def test_digest_splits_a_shared_kernel_by_bytes_and_converts_units(tmp_path: Path) -> None:
    rows = ["==PROF== Connected to process 1", HEADER]
    for kid, (us, mb) in enumerate([(15.0, "33.55"), (7.5, "8.39"), (15.2, "33.56")]):
        rows += [_row(kid, "dec_gemv_residual(GemvArgs)", "gpu__time_duration.sum", "usecond", f"{us}"),
                 _row(kid, "dec_gemv_residual(GemvArgs)", "dram__bytes_read.sum", "Mbyte", mb),
                 _row(kid, "dec_gemv_residual(GemvArgs)", "launch__registers_per_thread", "register/thread", "128")]
    rows += [_row(3, "gqa_cluster_g4", "gpu__time_duration.sum", "nsecond", "7,480"),
             _row(3, "gqa_cluster_g4", "dram__bytes_read.sum", "Kbyte", "640")]
    csv_path = tmp_path / "decode_ncu.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "decode_ncu_digest.py"), str(csv_path),
                          "--copy-gbps", "4000"], capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0] + " " + line.split()[1]: line.split() for line in out.splitlines()[1:-1]}
    down = lines["dec_gemv_residual ~34MB"]
    assert down[2] == "2" and down[3] == "15.10" and down[4] == "30.2"  # calls, us a call, us a step
    assert lines["dec_gemv_residual ~8MB"][2] == "1"
    assert "gqa_cluster_g4" in out and " 7.48 " in out  # "7,480" ns with a thousands separator
    assert out.splitlines()[-1].startswith("step: 4 kernels, 45.2 us")
