"""Refuse near-duplicates before they cost a GPU evaluation.

Two sources that differ only in comments, white space or names compute the same thing; a
proposal whose normalized token 3-grams overlap an earlier one's by more than the threshold
(Jaccard) is not new. LLMs return such copies often when asked to "optimize".

``NoveltyFilter`` remembers in memory; ``SharedNoveltyFilter`` keeps its state in the archive
(``admissions``), so that every driver of a task, and a restarted one, refuses the same copies.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import tokenize
from typing import Any

from autotuner.candidate import source_hash

_CUDA_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_WORD = re.compile(r"[A-Za-z_]\w*|\d+\.?\d*(?:[eE][-+]?\d+)?[fF]?|\S")


def normalized_tokens(source: str) -> list[str]:
    """Python tokens without comments, with string literals (the CUDA) tokenized too."""
    tokens: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                continue
            if tok.type == tokenize.STRING:
                body = _CUDA_COMMENT.sub(" ", tok.string)
                tokens.extend(_WORD.findall(body))
            else:
                tokens.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        tokens = _WORD.findall(_CUDA_COMMENT.sub(" ", source))
    return tokens


def fingerprint(source: str) -> str:
    return hashlib.sha256(" ".join(normalized_tokens(source)).encode()).hexdigest()


def shingles(source: str, k: int = 3) -> frozenset[int]:
    tokens = normalized_tokens(source)
    return frozenset(hash(tuple(tokens[i:i + k])) for i in range(max(1, len(tokens) - k + 1)))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class NoveltyFilter:
    """Remembers what was seen for one task; ``admit`` says whether a source is new enough."""

    def __init__(self, threshold: float = 0.97) -> None:
        self.threshold = threshold
        self._seen: dict[str, frozenset[int]] = {}
        self._lock = threading.Lock()

    def admit(self, source: str) -> tuple[bool, str]:
        """(True, "") for a new source, else (False, why) — and remember admitted ones."""
        key = fingerprint(source)
        sig = shingles(source)
        with self._lock:
            if key in self._seen:
                return False, "identical to an earlier candidate (after removing comments and spacing)"
            for other_key, other in self._seen.items():
                similarity = jaccard(sig, other)
                if similarity >= self.threshold:
                    return False, f"near-duplicate of an earlier candidate ({similarity:.1%} of its token 3-grams)"
            self._seen[key] = sig
        return True, ""

    def remember(self, source: str) -> None:
        with self._lock:
            self._seen[fingerprint(source)] = shingles(source)


class SharedNoveltyFilter:
    """The novelty filter of one task, whose memory is every admission in the archive.

    Before each decision it reads the admissions made since it last looked (by any driver), so
    it judges against everything admitted for the task. Exactly the same source as one admitted
    before is admitted again: its settings are claimed one by one (``evolution.ledger``), so
    nothing is evaluated twice, and a restarted run re-proposing its own candidates goes on
    where it stopped. A differently written copy is refused; of two drivers admitting copies of
    the same code at once, the archive's unique fingerprint lets one win. (Two *near*-duplicates
    admitted at the same instant by two drivers may both pass: they are different code, so
    this costs an evaluation, never a repeated one.)
    """

    def __init__(self, archive: Any, task_hash: str, run_id: int | None, threshold: float = 0.97) -> None:
        self.archive = archive
        self.task_hash = task_hash
        self.run_id = run_id
        self._local = NoveltyFilter(threshold)
        self._admitted: set[str] = set()  # source hashes admitted for the task, by anyone
        self._synced = 0  # the newest admission id read
        self._lock = threading.Lock()

    def _sync(self) -> None:
        for row in self.archive.admitted_sources(self.task_hash, self._synced):
            if row.source_hash not in self._admitted:
                self._local.remember(row.source)
                self._admitted.add(row.source_hash)
            self._synced = row.id

    def admit(self, source: str) -> tuple[bool, str]:
        """(True, "") for a source new enough (recorded as admitted), else (False, why)."""
        digest = source_hash(source)
        with self._lock:
            self._sync()
            if digest in self._admitted:
                return True, ""
            ok, why = self._local.admit(source)
            if not ok:
                return False, why
            holder = self.archive.admit_source(self.task_hash, fingerprint(source), digest, source, self.run_id)
            self._admitted.add(holder)
            if holder != digest:
                return False, "identical to a candidate another driver admitted first (after removing comments and spacing)"
            return True, ""

    def remember(self, source: str) -> None:
        """Count ``source`` as seen (one evaluated before this process started)."""
        with self._lock:
            self._local.remember(source)
            self._admitted.add(source_hash(source))
