"""What every region's code generator shares: templates, Python names, launch helpers.

A generator turns one planned region into ``KernelCode``: CUDA text (filled from a template
in ``kernels/templates``), the Python lines of ``ModelNew.forward`` that allocate its outputs
and launch it, and the kernel names. Python values are named by ``Ctx.py``: forward
arguments by their name, parameters as ``self.<path>``, region outputs ``t<id>``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from autotuner.resources import kernels_path

from evolution.proposers.rules import cuda
from evolution.proposers.rules.ir import AttrRef, Node, Unsupported
from evolution.proposers.rules.plan import Plan, Region

# Python helpers every candidate carries (module level; they call no PyTorch compute op).
PY_HELPERS = '''
def rules_aligned(vec, *tensors):
    """True when every tensor starts on a boundary of vec elements (vector loads are legal)."""
    return all(t.data_ptr() % (vec * t.element_size()) == 0 for t in tensors)


RULES_UNCAPPED = (1 << 31) - 1  # the most blocks a 1-D grid may have


def rules_grid(work, per_block, cap):
    """Blocks for ``work`` items at ``per_block`` per block, at most ``cap`` (a few waves)."""
    return max(1, min(cap, (work + per_block - 1) // per_block))


def rules_lean(mod, name):
    """Whether kernel ``name + '_v'`` (the 16-byte path alone) takes no more registers than
    ``name``: ptxas may give it more (LayerNorm at 256 threads: 56 against 47), and then fewer
    of its blocks fit on an SM. Where the count is unknown (an emulator): yes."""
    lean, full = mod.kernel(name + "_v").function, mod.kernel(name).function
    if not (hasattr(lean, "num_regs") and hasattr(full, "num_regs")):
        return True
    return lean.num_regs <= full.num_regs
'''
I32_LIMIT = 1 << 30  # tensors below this many elements use 32-bit index math


def templates_dir() -> Path:
    """``kernels/templates`` in a checkout; ``autotuner_kernels/templates`` when installed."""
    return kernels_path("templates")


@lru_cache(maxsize=None)
def template_text(name: str) -> str:
    return (templates_dir() / name).read_text()


def fill(name: str, **values: Any) -> str:
    """Template ``name`` with ``${KEY}`` placeholders filled; a missing key is an error."""
    return string.Template(template_text(name)).substitute({k: str(v) for k, v in values.items()})


def join_params(items: list[str]) -> str:
    """``"a, b, "`` (trailing comma and space) or ``""``: templates append the fixed ones."""
    return "".join(f"{item}, " for item in items)


@dataclass
class KernelCode:
    cuda: str
    forward: list[str]
    kernels: list[str]
    notes: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # lines of ``rules_setup`` after the compile
    arch: str | None = None  # an arch-specific target the module needs (``"sm_90a"``: wgmma), else the GPU's own


@dataclass
class Ctx:
    """Naming and settings shared by the generators of one candidate."""

    plan: Plan
    variant: dict[str, Any]  # structural choices, by region index: {"row": "warp", ...}
    defines: dict[str, int]

    def py(self, node: Node) -> str:
        if node.op == "input":
            return node.name
        if node.op == "param":
            return AttrRef(node.name).python()
        if node.id in self.plan.producer:
            return f"t{node.id}"
        raise Unsupported(f"{node.op} has no Python value")

    @staticmethod
    def kernel_name(region: Region) -> str:
        return f"rules_{region.kind}{region.index}"

    def dims(self, region: Region) -> list[str]:
        """Python expressions of the region space's runtime sizes."""
        anchor = self.py(region.anchor)
        return [f"{anchor}.shape[{d}]" for d in (region.perm or range(len(region.shape)))]

    def shape_of(self, region: Region, node: Node) -> str:
        """Python tuple of ``node``'s runtime shape, from its map onto the region's space."""
        if node.op == "unrowview":
            return f"{self.py(node.args['like'])}.shape"
        dims = self.dims(region)
        m = region.maps.get(node.id, tuple(None for _ in node.shape))
        if node.shape == region.shape and all(d == i or region.shape[i] == 1 for i, d in enumerate(m)):
            return f"{self.py(region.anchor)}.shape"
        parts = [dims[d] if d is not None else "1" for d in m]
        return "(" + "".join(p + ", " for p in parts) + ")"

    def alloc(self, region: Region, node: Node) -> str:
        anchor = self.py(region.anchor)
        return (f"{self.py(node)} = torch.empty({self.shape_of(region, node)}, "
                f"dtype={cuda.TORCH_DTYPE[node.dtype]}, device={anchor}.device)")


def pointer_param(node: Node, name: str, const: bool = True) -> str:
    ctype = cuda.storage(node.dtype)[0]
    return f"{'const ' if const else ''}{ctype}* __restrict__ {name}"
