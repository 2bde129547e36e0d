"""A stand-in for the worker process, to test the parent's process handling on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

job_path, result_path, status_path = (Path(a) for a in sys.argv[1:4])
job = json.loads(job_path.read_text())
behavior = job["behavior"]
status_path.write_text(f"candidate {time.time()}\n")
if behavior == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(job["pid_file"]).write_text(str(child.pid))
    time.sleep(600)
elif behavior == "segfault":
    os.kill(os.getpid(), signal.SIGSEGV)
elif behavior == "exit_no_result":
    print("RuntimeError: CUDA error: an illegal memory access was encountered", flush=True)
    sys.exit(1)
elif behavior == "ok":
    result_path.write_text(json.dumps({"verdict": "rejected", "stage": "correctness", "reason": "fake"}) + "\n")
    status_path.write_text(f"done {time.time()}\n")
