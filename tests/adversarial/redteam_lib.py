"""Shared helpers for the red-team tests and ``scripts/redteam_table.py``.

Every candidate file (adversarial or correct) carries header comments that say which task it
is for and, for adversarial ones, how the evaluator must reject it::

    # TASK: tests/adversarial/tasks/relu_positive.py   (path relative to the repository root)
    # EXPECT: correctness          (accepted Stage values with the static check on, '|' separated)
    # EXPECT_RUNTIME: correctness  (Stage values with the static check OFF; 'n/a' = not run;
    #                               omitted = same as EXPECT)
    # REASON: poison|nan           (words, one of which result.reason.lower() must contain)
    # REASON_RUNTIME: ...          (optional: the same for the static-check-off run)
    # TIME: yes                    (optional: the trick needs the timing stage to be caught)
    # TIMEOUT_S: 60                (optional: the evaluator's hard timeout for this candidate)
    # POOL_MB: 256                 (optional: EvalConfig.pool_bytes, to make a small task take
    #                               the few-input-sets timing path of a large one)
    # SLOW: yes                    (optional: compiles for tens of seconds, e.g. load_inline)

Nothing here imports a candidate: headers and CUDA sources are read from the text (``ast``),
so a hostile candidate never runs in the test process.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADVERSARIAL_DIR = REPO / "tests" / "adversarial" / "candidates"
CORRECT_DIR = REPO / "tests" / "candidates"

from autotuner.evaluator.verdict import Stage  # noqa: E402 - the stages the evaluator really has

STAGES = {s.value for s in Stage}
_HEADER_RE = re.compile(r"^#\s*([A-Z_]+):\s*(.*?)\s*$", re.M)
_KNOWN_KEYS = {
    "TASK", "EXPECT", "EXPECT_RUNTIME", "REASON", "REASON_RUNTIME", "TIME", "TIMEOUT_S", "POOL_MB", "SLOW",
    "WINNER_GATE", "SECRETS",
}
# Where the escape candidates look for files outside their folder, and the port something listens
# on so that a connection would succeed. The candidate files name these; ``EscapeTargets`` gives
# each test process its own folder and port and a copy of the candidate that names them, so
# red-team rows can run in parallel (pytest -n, redteam_table.py --jobs) without sharing them.
CANDIDATE_ESCAPE_DIR = "/tmp/autotuner-redteam"
CANDIDATE_ESCAPE_PORT = 47011
SECRETS = {"OPENAI_API_KEY": "sk-redteam-0penai-s3cret", "AUTOTUNER_LLM_API_KEY": "redteam-llm-s3cret",
           "AUTOTUNER_DB_URL": "postgresql://tuner:redteam-db-pa55@127.0.0.1:5432/archive"}


@dataclass(frozen=True)
class Candidate:
    path: Path
    task: Path
    expect: frozenset[str] = frozenset()
    expect_runtime: frozenset[str] | None = None  # None: the static-off run is not meaningful
    reason: tuple[str, ...] = ()
    reason_runtime: tuple[str, ...] = ()
    time: bool = False
    timeout_s: float | None = None
    pool_mb: int | None = None
    slow: bool = False
    winner_gate: bool = False  # caught only by the winner gate (compute-sanitizer), after evaluation
    secrets: bool = False  # run with secrets in the parent's environment; none may show in the result
    trick: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def static_only(self) -> bool:
        """Caught by the static check with it on (the static-off run then tests another layer)."""
        return "static_check" in self.expect

    def rel(self) -> str:
        return self.path.relative_to(REPO).as_posix()


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in value.split("|") if p.strip())


def _stages(value: str, path: Path, key: str) -> frozenset[str]:
    stages = frozenset(_split(value))
    bad = stages - STAGES
    if bad:
        raise ValueError(f"{path.name}: {key} names unknown stages {sorted(bad)}; known: {sorted(STAGES)}")
    return stages


def parse_candidate(path: Path) -> Candidate:
    text = path.read_text(encoding="utf-8")
    headers: dict[str, str] = {}
    for key, value in _HEADER_RE.findall(text):
        if key in _KNOWN_KEYS:
            headers.setdefault(key, value)
    if "TASK" not in headers:
        raise ValueError(f"{path}: no '# TASK:' header")
    task = REPO / headers["TASK"]
    expect = _stages(headers["EXPECT"], path, "EXPECT") if "EXPECT" in headers else frozenset()
    runtime_text = headers.get("EXPECT_RUNTIME")
    if runtime_text is None:
        expect_runtime: frozenset[str] | None = expect or None
    elif runtime_text.strip().lower() == "n/a":
        expect_runtime = None
    else:
        expect_runtime = _stages(runtime_text, path, "EXPECT_RUNTIME")
    doc = ast.get_docstring(ast.parse(text)) or ""
    return Candidate(
        path=path,
        task=task,
        expect=expect,
        expect_runtime=expect_runtime,
        reason=_split(headers.get("REASON", "")),
        reason_runtime=_split(headers.get("REASON_RUNTIME", "")),
        time=headers.get("TIME", "no").lower() in ("yes", "true", "1"),
        timeout_s=float(headers["TIMEOUT_S"]) if "TIMEOUT_S" in headers else None,
        pool_mb=int(headers["POOL_MB"]) if "POOL_MB" in headers else None,
        slow=headers.get("SLOW", "no").lower() in ("yes", "true", "1"),
        winner_gate=headers.get("WINNER_GATE", "no").lower() in ("yes", "true", "1"),
        secrets=headers.get("SECRETS", "no").lower() in ("yes", "true", "1"),
        trick=doc.strip().splitlines()[0] if doc.strip() else "",
        headers=headers,
    )


def _candidate_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.glob("*.py")
        if not p.name.startswith(("test_", "_")) and p.name != "conftest.py"
    )


def adversarial_candidates() -> list[Candidate]:
    return [parse_candidate(p) for p in _candidate_files(ADVERSARIAL_DIR)]


def correct_candidates() -> list[Candidate]:
    return [parse_candidate(p) for p in _candidate_files(CORRECT_DIR)]


def cuda_sources(path: Path) -> list[tuple[str, str]]:
    """Module-level string constants that hold CUDA kernels: [(name, source)], not imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and "__global__" in value.value:
            name = next((t.id for t in targets if isinstance(t, ast.Name)), f"line{node.lineno}")
            found.append((name, value.value))
    return found


def config_overrides(cand: Candidate) -> dict:
    """EvalConfig keyword arguments a candidate's headers ask for (timeout, pool size)."""
    extra: dict = {}
    if cand.timeout_s is not None:
        extra["timeout_s"] = cand.timeout_s
    if cand.pool_mb is not None:
        extra["pool_bytes"] = cand.pool_mb << 20
    return extra


def reason_matches(reason: str, words: tuple[str, ...]) -> bool:
    return not words or any(w in reason.lower() for w in words)


class EscapeTargets:
    """What the escape candidates reach for: secrets in the environment, a secret file outside
    their folder, a listener on 127.0.0.1. ``leaks(text)`` names any secret found in ``text``.

    Each entry gets a fresh folder and an ephemeral port of its own; ``candidate(path)`` writes
    a copy of an escape candidate that names them (nothing else in its text changes), so two
    processes running escape candidates at once never see each other's files or listener.
    """

    def __enter__(self) -> "EscapeTargets":
        import os
        import socket
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="autotuner-redteam-"))
        (self.dir / "secret.txt").write_text("redteam-file-s3cret\n")
        self.copies = Path(tempfile.mkdtemp(prefix="autotuner-redteam-cands-"))
        self.saved = {k: os.environ.get(k) for k in SECRETS}
        os.environ.update(SECRETS)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        return self

    def candidate(self, path: Path) -> Path:
        """A copy of ``path`` aimed at this entry's folder and port (the same file if it names neither)."""
        text = path.read_text()
        aimed = text.replace(CANDIDATE_ESCAPE_DIR, str(self.dir)).replace(str(CANDIDATE_ESCAPE_PORT), str(self.port))
        if aimed == text:
            return path
        copy = self.copies / path.name
        copy.write_text(aimed)
        return copy

    def __exit__(self, *exc: object) -> None:
        import os
        import shutil

        self.server.close()
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.copies, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def leaks(text: str) -> list[str]:
        values = list(SECRETS.values()) + ["redteam-file-s3cret", "redteam-db-pa55"]
        return [v for v in values if v in text]

    def dropped(self) -> list[str]:
        """Files a candidate managed to write into the folder outside its own."""
        return [p.name for p in self.dir.glob("dropped-by-*")]
