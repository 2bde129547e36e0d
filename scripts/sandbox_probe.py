#!/usr/bin/env python3
"""Which sandbox layer keeps CUDA from initializing? Each layer alone, then all, in a fresh
process that enters it and then calls torch.cuda.init() (run on a GPU machine)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = r'''
import os, sys, tempfile
sys.path.insert(0, {repo!r})
from pathlib import Path
from autotuner.evaluator import isolation as I
layer = sys.argv[1]
work = Path(tempfile.mkdtemp()); cache = Path(tempfile.mkdtemp())
if layer == "limits":
    print(I.apply_limits(I.Limits(host_memory_bytes=64 << 30, file_bytes=4 << 30, processes=256, cpu_s=600)))
elif layer == "network":
    print(I.isolate_network())
elif layer == "files":
    print(I.restrict_files(I.default_read_roots([str(work), str(cache)]), [str(work), str(cache), "/dev"]))
elif layer == "hook":
    roots = I.default_read_roots([str(work), str(cache)])
    I.install_hook(roots, [str(work), str(cache), "/dev"])
elif layer == "all":
    print(I.enter(I.SandboxSpec(workdir=str(work), cache_dir=str(cache),
                                limits={{"host_memory_bytes": 64 << 30, "cpu_s": 600}})))
import torch
try:
    torch.cuda.init()
    print("CUDA ok:", torch.cuda.get_device_name())
except Exception as exc:
    print("CUDA FAILED:", type(exc).__name__, exc)
'''


def main() -> None:
    code = PROBE.format(repo=str(REPO))
    for layer in ("none", "limits", "network", "files", "hook", "all"):
        out = subprocess.run([sys.executable, "-c", code, layer], capture_output=True, text=True, timeout=120)
        text = (out.stdout + out.stderr).strip().splitlines()
        print(f"{layer:8s} -> {' | '.join(line for line in text if line)[-300:]}")


if __name__ == "__main__":
    main()
