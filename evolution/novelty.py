"""Refuse near-duplicates before they cost a GPU evaluation.

Two sources that differ only in comments, white space or names compute the same thing; a
proposal whose normalized token 3-grams overlap an earlier one's by more than the threshold
(Jaccard) is not new. LLMs return such copies often when asked to "optimize".
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import tokenize

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
