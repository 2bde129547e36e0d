"""``autotuner archive serve`` end to end: a child process on a free port, loopback by default,
stopped with Ctrl-C (SIGINT); a missing archive and a taken port are one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("starlette", reason="the archive browser needs the web extra: pip install -e '.[web]'")

from archive import Archive  # noqa: E402
from web_support import fill  # noqa: E402

pytestmark = pytest.mark.integration


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "autotuner.cli.main", "archive", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_serve_binds_loopback_serves_pages_and_stops_on_ctrl_c(tmp_path) -> None:  # noqa: ANN001
    db = tmp_path / "archive.db"
    with Archive.open(str(db)) as archive:
        demo = fill(archive)
    proc = serve("--db", str(db), "--port", "0")
    try:
        line = proc.stdout.readline()  # printed once the socket listens
        assert "read-only on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split(" on ")[-1].split()[0].rstrip("/")
        with urllib.request.urlopen(f"{url}/kernels/{demo.kernels['relu/opt1']}", timeout=30) as r:
            assert r.status == 200 and "Kernel #" in r.read().decode()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 130), err


def test_serve_refuses_a_missing_archive_and_a_taken_port(tmp_path) -> None:  # noqa: ANN001
    proc = serve("--db", str(tmp_path / "none.db"), "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "no archive at" in err and not (tmp_path / "none.db").exists()
    db = tmp_path / "archive.db"
    Archive.open(str(db)).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc = serve("--db", str(db), "--port", str(taken.getsockname()[1]))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "cannot listen on 127.0.0.1:" in err and "--port" in err
