"""A stand-in worker that shuts itself in as the real one does, then tries to get out.

Run by ``test_isolation.py`` through the parent's real launcher (``sandbox._run_child``):
``python sandbox_probe.py JOB RESULT STATUS``. Each entry of ``job["tries"]`` is one attempt;
the probe reports what happened to each (``ok`` and what it saw, or the error), and what the
audit hook recorded. No GPU, no torch.
"""

import ctypes
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from autotuner.evaluator import isolation

job_path, result_path, status_path = (Path(a) for a in sys.argv[1:4])
job = json.loads(job_path.read_text())
result_fd = os.open(result_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
status_fd = os.open(status_path, os.O_WRONLY | os.O_CREAT)
os.pwrite(status_fd, f"candidate {time.time()}\n".encode(), 0)
layers = isolation.enter(isolation.SandboxSpec(**job["sandbox"])) if job.get("sandbox") else []
if job.get("arm", True):
    isolation.arm()


def attempt(kind, arg):
    if kind == "environ":
        return {"environ": dict(os.environ), "proc": Path("/proc/self/environ").read_bytes().decode(errors="replace")}
    if kind == "cwd":
        return {"cwd": os.getcwd(), "home": os.environ.get("HOME"), "tmpdir": os.environ.get("TMPDIR")}
    if kind == "read":
        return Path(arg).read_text()
    if kind == "native_read":  # libc open(): unseen by the audit hook, refused by the kernel (Landlock)
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.open(arg.encode(), os.O_RDONLY)
        return fd if fd < 0 and ctypes.get_errno() else "opened"
    if kind == "write":
        Path(arg).write_text("pwned")
        return "written"
    if kind == "connect":
        with socket.create_connection(("127.0.0.1", int(arg)), timeout=2):
            return "connected"
    if kind == "spawn":
        return subprocess.run(arg, capture_output=True, text=True, timeout=20).returncode
    if kind == "eval":  # arg: the module name the calling code runs under
        namespace = {"__name__": arg}
        exec("def run():\n    return eval('20 + 22')", namespace)  # the probe's own exec: library code
        return namespace["run"]()
    if kind == "limits":
        return {name: resource.getrlimit(getattr(resource, name)) for name in
                ("RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NPROC")}
    if kind == "spin":
        while True:
            pass
    if kind == "allocate":
        return len(bytearray(int(arg)))
    if kind == "big_file":
        with open("big.bin", "wb") as f:
            f.write(b"x" * int(arg))
        return "written"
    raise ValueError(kind)


report = {"layers": layers, "tries": []}
for kind, arg in job["tries"]:
    try:
        report["tries"].append({"kind": kind, "ok": True, "value": attempt(kind, arg)})
    except BaseException as exc:  # noqa: BLE001 - every failure is the data this probe reports
        report["tries"].append({"kind": kind, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
report["violations"] = isolation.violations()
os.write(result_fd, (json.dumps(report) + "\n").encode())
os.ftruncate(status_fd, 0)
os.pwrite(status_fd, f"done {time.time()}\n".encode(), 0)
