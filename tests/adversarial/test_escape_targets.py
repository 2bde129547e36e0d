"""The escape candidates' targets are private to each test process, so red-team rows can run
in parallel: each entry has its own folder and listener, and the candidate copy it hands out
aims at them and differs from the original in nothing else."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redteam_lib as rt  # noqa: E402


def test_two_entries_have_their_own_folder_port_and_aimed_copies() -> None:
    read = rt.ADVERSARIAL_DIR / "escape_read_python.py"
    connect = rt.ADVERSARIAL_DIR / "escape_connect_cpp.py"
    with rt.EscapeTargets() as a, rt.EscapeTargets() as b:
        assert a.dir != b.dir and a.port != b.port
        for targets in (a, b):
            aimed = targets.candidate(read).read_text()
            assert str(targets.dir) in aimed and rt.CANDIDATE_ESCAPE_DIR + "/" not in aimed
            assert aimed.replace(str(targets.dir), rt.CANDIDATE_ESCAPE_DIR) == read.read_text()
            assert f"{targets.port}" in targets.candidate(connect).read_text()
            socket.create_connection(("127.0.0.1", targets.port), timeout=2).close()  # someone listens
        (a.dir / "dropped-by-python.txt").write_text("x")
        assert a.dropped() == ["dropped-by-python.txt"] and b.dropped() == []
        plain = rt.ADVERSARIAL_DIR / "hang.py"
        assert a.candidate(plain) == plain  # nothing to aim: the file itself
    assert not a.dir.exists() and not b.dir.exists()
