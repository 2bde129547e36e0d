"""The candidate's process is shut in: environment, folder, network, files, processes, limits.

Runs a probe child through the parent's real launcher (``sandbox._run_child``) with the same
sandbox spec the evaluator sends; no GPU needed. The probe tries each way out and reports
what happened; the audit hook's record is what rejects a real candidate.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from autotuner.evaluator import isolation
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import _crash_reason, _run_child, sandbox_spec

PROBE = (sys.executable, str(Path(__file__).with_name("sandbox_probe.py")))
SECRETS = {"OPENAI_API_KEY": "sk-test-0penai-s3cret", "AUTOTUNER_LLM_API_KEY": "llm-s3cret-key",
           "AUTOTUNER_DB_URL": "postgresql://tuner:db-pa55word@db.example:5432/archive",
           "HF_TOKEN": "hf_s3cret_token", "MY_PASSWORD": "hunter2-s3cret"}


def _probe(tmp_path: Path, tries: list, config: EvalConfig | None = None, arm: bool = True) -> dict:
    config = config or EvalConfig(timeout_s=60)
    workdir = tmp_path / "eval"
    workdir.mkdir()
    job = {"tries": tries, "arm": arm, "sandbox": sandbox_spec(config, workdir)}
    data, phase, returncode, tail = _run_child(job, config, workdir, command=PROBE)
    assert data, f"probe gave no report ({phase}, {returncode}): {tail}"
    return data[0]


@pytest.fixture
def secrets_in_parent(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def test_environment_is_allow_listed(tmp_path, secrets_in_parent):
    report = _probe(tmp_path, [["environ", None], ["cwd", None]])
    seen = report["tries"][0]["value"]
    text = repr(seen)
    for name, value in secrets_in_parent.items():
        assert name not in seen["environ"], f"{name} reached the candidate's environment"
        assert value not in text, f"the value of {name} is visible to the candidate"
    where = report["tries"][1]["value"]
    work = str((tmp_path / "eval" / "work").resolve())
    assert where["cwd"] == work and where["home"] == work and where["tmpdir"] == work


def test_child_environment_drops_secret_names_and_credentials():
    parent = {"PATH": "/usr/bin", "CUDA_HOME": "/usr/local/cuda", "AUTOTUNER_TOKEN_LIMIT": "5",
              "TORCH_PROXY": "http://u:pw@proxy:3128", "OPENAI_API_KEY": "x", "AUTOTUNER_DB_URL": "sqlite:///a.db"}
    env = isolation.child_environment(parent, Path("/w"), Path("/c"))
    assert env["PATH"] == "/usr/bin" and env["CUDA_HOME"] == "/usr/local/cuda"
    for dropped in ("AUTOTUNER_TOKEN_LIMIT", "TORCH_PROXY", "OPENAI_API_KEY", "AUTOTUNER_DB_URL"):
        assert dropped not in env
    assert env["HOME"] == "/w" and env["TORCH_EXTENSIONS_DIR"] == "/c/torch_extensions"


def test_reading_and_writing_outside_the_folder_is_refused_and_recorded(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("the archive's password")
    report = _probe(tmp_path, [["read", str(secret)], ["write", str(outside / "dropped.txt")],
                               ["write", "inside.txt"]])
    read, write, inside = report["tries"]
    assert not read["ok"] and "PermissionError" in read["error"]
    assert not write["ok"] and not (outside / "dropped.txt").exists()
    assert inside["ok"], "the candidate's own folder must stay writable"
    assert any("reading" in v and "secret.txt" in v for v in report["violations"])
    assert any("writing" in v and "dropped.txt" in v for v in report["violations"])


@pytest.mark.skipif(isolation.landlock_abi() < 1, reason="this kernel has no Landlock")
def test_native_code_cannot_read_outside_either(tmp_path):
    """libc's open() never passes the audit hook: the kernel (Landlock) refuses it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    report = _probe(tmp_path, [["native_read", str(secret)], ["native_read", "/proc/1/environ"]])
    assert any("Landlock" in layer for layer in report["layers"]), report["layers"]
    for attempt in report["tries"]:
        assert attempt["ok"] and attempt["value"] == -1, attempt


def test_network_is_unreachable(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        hooked = _probe(tmp_path / "a", [["connect", port]]) if (tmp_path / "a").mkdir() is None else None
        unhooked = _probe(tmp_path / "b", [["connect", port]], arm=False) if (tmp_path / "b").mkdir() is None else None
    finally:
        server.close()
    assert not hooked["tries"][0]["ok"] and any("network" in v for v in hooked["violations"])
    if any(layer.startswith("network namespace") for layer in unhooked["layers"]):
        # The kernel layer alone: even without the audit hook, 127.0.0.1 is another machine's.
        assert not unhooked["tries"][0]["ok"], unhooked
    else:
        pytest.skip(f"no network namespace here ({unhooked['layers']}); the audit hook alone refused it")


def test_processes_other_than_compilers_are_refused(tmp_path):
    report = _probe(tmp_path, [["spawn", ["true"]], ["spawn", ["cc", "--version"]]])
    other, compiler = report["tries"]
    assert not other["ok"] and "PermissionError" in other["error"]
    assert any("starting a process" in v for v in report["violations"])
    assert compiler["ok"] or "FileNotFoundError" in compiler["error"], "load_inline and Triton need the compilers"


def test_eval_from_candidate_code_is_refused_and_library_eval_is_not(tmp_path):
    report = _probe(tmp_path, [["eval", isolation.MODULE_PREFIX + "7"], ["eval", "dataclasses"]])
    candidate, library = report["tries"]
    assert not candidate["ok"] and "PermissionError" in candidate["error"], candidate
    assert library["ok"] and library["value"] == 42, "libraries (dataclasses, namedtuple, Triton) build code too"
    assert any("built from a string" in v for v in report["violations"])


def test_limits_are_set(tmp_path):
    config = EvalConfig(timeout_s=60, host_memory_gb=3, file_size_mb=100, cpu_s=50)
    limits = _probe(tmp_path, [["limits", None]], config)["tries"][0]["value"]
    assert limits["RLIMIT_CPU"][0] == 50 and limits["RLIMIT_CORE"] == [0, 0]
    assert limits["RLIMIT_DATA"] == [3 << 30, 3 << 30]
    assert limits["RLIMIT_FSIZE"] == [100 << 20, 100 << 20]


def test_host_memory_and_file_size_limits_bind(tmp_path):
    config = EvalConfig(timeout_s=60, host_memory_gb=0.5, file_size_mb=1)
    report = _probe(tmp_path, [["allocate", 2 << 30], ["big_file", 4 << 20]], config)
    memory, big = report["tries"]
    assert not memory["ok"] and "MemoryError" in memory["error"]
    assert not big["ok"] and "File too large" in big["error"]


def test_cpu_limit_kills_a_spinning_candidate(tmp_path):
    config = EvalConfig(timeout_s=60, cpu_s=1)
    workdir = tmp_path / "eval"
    workdir.mkdir()
    job = {"tries": [["spin", None]], "sandbox": sandbox_spec(config, workdir)}
    data, _, returncode, tail = _run_child(job, config, workdir, command=PROBE)
    assert data == []
    assert "SIGXCPU" in _crash_reason(returncode, tail) or "SIGKILL" in _crash_reason(returncode, tail)


def test_native_spawn_is_seen_by_the_census():
    """system() from C++ never passes the audit hook; the process census still sees it."""
    import ctypes

    before = isolation.census()
    assert isolation.spawned_since(before) is None
    ctypes.CDLL(None).system(b"true")
    assert "native code" in (isolation.spawned_since(before) or "")
    isolation._HOOK.violations.clear()


@pytest.mark.parametrize("program, allowed", [
    (["ninja", "-v"], True), ("/usr/local/cuda/bin/ptxas", True), ("c++ -dumpversion", True),
    (["id"], False), ("ninja; rm -rf /", False), ("gcc $(cat /etc/passwd)", False), (["/bin/sh", "-c", "id"], False),
])
def test_only_compilers_may_be_started_from_python(program, allowed):
    assert isolation._tool(program) is allowed
