#!/usr/bin/env python3
"""Which instruction makes ptxas serialize a kernel's wgmma (C7513, "non wgmma instructions defining
input registers of a wgmma between start and end of the pipeline stage")?

A kernel that waits with ``wgmma.wait_group 1`` (one group still running, as an overlapped
softmax does) gets this when something in the window before the following ``wait_group 0``
writes registers ptxas gave to the running group, which the PTX does not show (ptxas allocates
after it). This inserts a ``wgmma.wait_group 0`` at each point of that window and bisects for
the first point past which the warning appears; the instruction there is the culprit (for the
flash kernel, 2026-12-02: the bf16 packing of p into the registers the running p v reads). The
bisection is exact on a branch-free window; past a branch it says so. Runs ptxas only, no GPU:

    nvcc -arch=sm_90a --ptx -o k.ptx k.cu && python scripts/ptx_wgmma_bisect.py k.ptx [--which N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

WARNING = "C7513"


def serialized(lines: list[str], arch: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        ptx = Path(tmp) / "k.ptx"
        ptx.write_text("\n".join(lines) + "\n")
        run = subprocess.run(["ptxas", f"-arch={arch}", "-v", str(ptx), "-o", str(Path(tmp) / "k.cubin")],
                             capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"ptxas failed:\n{run.stderr[-2000:]}")
    return WARNING in run.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ptx")
    parser.add_argument("--which", type=int, default=0, help="the N-th wait_group 1 of the file (default 0)")
    parser.add_argument("--arch", default="sm_90a")
    args = parser.parse_args()
    lines = Path(args.ptx).read_text().splitlines()
    waits = [i for i, line in enumerate(lines) if "wgmma.wait_group.sync.aligned 1" in line]
    if len(waits) <= args.which:
        raise SystemExit(f"{args.ptx}: {len(waits)} wgmma.wait_group 1, none at index {args.which}")
    start = waits[args.which]
    end = next((i for i, line in enumerate(lines) if i > start and "wgmma.wait_group.sync.aligned 0" in line), None)
    if end is None:
        raise SystemExit("no wgmma.wait_group 0 after it")
    if not serialized(lines, args.arch):
        print(f"ptxas does not report {WARNING} for this file")
        return 0
    insert = lambda at: lines[:at] + ["\twgmma.wait_group.sync.aligned 0;"] + lines[at:]  # noqa: E731
    good, bad = start + 1, end  # a wait right after the wait_group 1 closes the window: no warning
    if serialized(insert(good), args.arch):
        print(f"{WARNING} even with the window closed at once: the culprit is before line {start + 1}")
        return 1
    while bad - good > 1:
        mid = (good + bad) // 2
        if serialized(insert(mid), args.arch):
            bad = mid
        else:
            good = mid
    print(f"the first instruction that brings {WARNING} back, line {bad}: {lines[bad - 1].strip()}")
    if " bra" in lines[bad - 1]:  # a wait inserted past a branch closes the window on one path only
        print("  (a branch: the culprit is past it on one of its paths; make the window branch-free, e.g. with "
              "the first wait 0 moved ahead of the branch, and bisect again)")
    for k in range(max(start, bad - 4), min(end, bad + 2)):
        print(f"  {k + 1}: {lines[k].rstrip()[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
