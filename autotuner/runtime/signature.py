"""Read ``extern "C" __global__`` kernel signatures out of CUDA C source.

Knowing each parameter's C type lets a launch turn Python ints and floats into the exact
width the kernel expects (a Python int passed to an ``int`` parameter must be 4 bytes, not 8),
and catch a wrong argument count before the GPU reads garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_KERNEL_RE = re.compile(
    r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
    r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)",
    re.S,
)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)

# C scalar type -> numpy type of the same width and signedness.
SCALAR_TYPES: dict[str, type[np.generic]] = {
    "int": np.int32, "int32_t": np.int32, "signed": np.int32, "signed int": np.int32,
    "unsigned": np.uint32, "unsigned int": np.uint32, "uint32_t": np.uint32,
    "long": np.int64, "long int": np.int64, "long long": np.int64, "long long int": np.int64,
    "int64_t": np.int64, "ptrdiff_t": np.int64, "ssize_t": np.int64,
    "unsigned long": np.uint64, "unsigned long long": np.uint64, "uint64_t": np.uint64,
    "size_t": np.uint64,
    "short": np.int16, "int16_t": np.int16, "unsigned short": np.uint16, "uint16_t": np.uint16,
    "char": np.int8, "int8_t": np.int8, "unsigned char": np.uint8, "uint8_t": np.uint8,
    "bool": np.bool_, "float": np.float32, "double": np.float64,
}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict", "struct"}


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str  # the base type with qualifiers removed, e.g. "float" or "unsigned int"
    pointer: bool

    @property
    def numpy_type(self) -> type[np.generic] | None:
        return np.uint64 if self.pointer else SCALAR_TYPES.get(self.ctype)


@dataclass(frozen=True)
class KernelSignature:
    name: str
    params: tuple[Param, ...]


def _parse_param(text: str) -> Param | None:
    text = text.split("=")[0].strip()
    if not text:
        return None
    pointer = "*" in text or "[" in text
    words = [w for w in re.split(r"[\s*&\[\]]+", text) if w and w not in _QUALIFIERS]
    if len(words) < 2:  # unnamed parameter: type only
        return Param(name="", ctype=" ".join(words), pointer=pointer)
    return Param(name=words[-1], ctype=" ".join(words[:-1]), pointer=pointer)


def parse_kernels(source: str) -> dict[str, KernelSignature]:
    """Every ``__global__`` kernel in ``source``, by name. Templates are skipped."""
    clean = _COMMENT_RE.sub(" ", source)
    kernels: dict[str, KernelSignature] = {}
    for match in _KERNEL_RE.finditer(clean):
        name, params_text = match.group(1), match.group(2)
        params = tuple(p for p in (_parse_param(t) for t in params_text.split(",")) if p)
        if params_text.strip() in ("", "void"):
            params = ()
        kernels[name] = KernelSignature(name, params)
    return kernels


def kernel_names(source: str) -> list[str]:
    """Names of the ``__global__`` functions in ``source`` (for matching profiler records)."""
    return list(parse_kernels(source))
