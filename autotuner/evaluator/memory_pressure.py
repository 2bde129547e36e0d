"""Whose out-of-memory is it: the candidate's, or the processes sharing the GPU?

A candidate whose forward asks for more memory than the GPU has is rejected. One whose request
would have fit, had other processes not held the memory (parallel test workers, a second run,
another user), is not at fault: its result is a harness error, which never marks the kernel as
rejected (a rejection at the current harness keeps a kernel from ever being best) and says
what to do. Seen on an H200 (2026-12-01): an 8 GiB buffer of a Llama-shaped RMSNorm failed with
4.6 GiB free while test workers beside it held over 100 GiB.
"""

from __future__ import annotations

import re
import sys

_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
_REQUEST = re.compile(r"tried to allocate\s+([0-9.]+)\s*([kmgt]?)i?b", re.IGNORECASE)
# CUDA contexts and stray allocations of other processes that never make a request fail
_SLACK = 1 << 30


def requested_bytes(message: str) -> int | None:
    """The size PyTorch's allocator could not get, from its error message."""
    m = _REQUEST.search(message)
    if not m:
        return None
    return int(float(m.group(1)) * (1 << _SHIFT[m.group(2).upper()]))


def others_caused(requested: int, free: int, total: int, own: int) -> bool:
    """True when ``requested`` bytes would have fit had other processes held nothing:
    ``total - free - own`` is what they hold; the request fits in what they hold plus what
    is free, and what they hold is more than a context's worth."""
    others = max(0, total - free - own)
    return others > _SLACK and requested <= free + others - _SLACK


def _own_bytes() -> int:
    import torch

    own = torch.cuda.memory_reserved()
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        try:
            own += cupy.get_default_memory_pool().total_bytes()
        except Exception:  # noqa: BLE001 - no pool, no device: count torch's only
            pass
    return own


def environmental_oom(exc: BaseException) -> str | None:
    """A reason when ``exc`` is an out-of-memory the candidate did not cause, else None."""
    text = f"{type(exc).__name__}: {exc}"
    if "out of memory" not in text.lower():
        return None
    requested = requested_bytes(text)
    if requested is None:
        return None
    try:
        import torch

        free, total = torch.cuda.mem_get_info()
        own = _own_bytes()
    except Exception:  # noqa: BLE001 - a context the error broke: leave the verdict to the caller
        return None
    if not others_caused(requested, free, total, own):
        return None
    gib = 1 << 30
    return (f"out of memory, not the candidate's doing: it asked for {requested / gib:.2f} GiB of a "
            f"{total / gib:.0f} GiB GPU on which other processes held {(total - free - own) / gib:.1f} GiB; "
            "evaluate it again when the GPU is not shared (fewer parallel jobs)")
