"""Read the candidate's Python before any of it runs, and refuse the known ways out.

The format needs very little: torch, the runtime, CuPy's raw kernels and streams, Triton,
load_inline, math. Everything else (files, processes, threads, ctypes, exec, dunder access,
try/except fallbacks, patching modules, global switches, the reference model) is a way to
cheat or to escape the sandbox, so it is refused with the line and the rule.

This is the first layer only, and it refuses only what cannot be seen at run time. Streams
are allowed (CuPy's ``ExternalStream`` / ``Stream.from_external`` / ``get_current_stream``,
``torch.cuda.Stream``, ``stream=`` arguments, events): the kernel trace records the stream
of every kernel and rejects any that did not run on the current one. Every trick this layer
catches is also caught at run time (red team with the check off), so a gap here is not a hole.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from autotuner import pyast
from autotuner.candidate import dotted_name

ALLOWED_IMPORTS = {
    "torch", "torch.nn", "torch.nn.functional", "math", "numpy", "typing", "functools",
    "cupy", "cupy.cuda", "autotuner.runtime", "torch.utils.cpp_extension", "__future__",
    "triton", "triton.language",
}
# From these modules only these names may be imported or used as attributes.
RESTRICTED_ATTRS = {
    "cupy": {
        "RawKernel", "RawModule", "asarray", "from_dlpack", "float16", "float32", "float64",
        "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64", "bool_", "intp", "uintp",
        "cuda",
    },
    # Streams and the device: which stream a kernel ran on is judged at run time.
    "cupy.cuda": {"ExternalStream", "Stream", "get_current_stream", "Device", "Event"},
    "torch.utils.cpp_extension": {"load_inline"},
    # The runtime's public API (autotuner.runtime.__all__, a test keeps them equal): not its
    # submodules, such as the evaluator's dry-run recording (runtime/dry.py).
    "autotuner.runtime": {
        "CudaModule", "Kernel", "cache_root", "clear_memory_cache", "compile_module", "kernel_names",
        "allow_nonportable_clusters", "max_active_clusters", "nvcc_ptx", "parse_diagnostics", "parse_kernels",
        "pdl_enabled", "pdl_launch",
    },
    "triton": {"jit", "cdiv", "next_power_of_2", "autotune", "Config", "heuristics", "language"},
}
FORBIDDEN_CALLS = {
    "open", "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr",
    "globals", "locals", "vars", "breakpoint", "input", "memoryview", "exit", "quit",
    "help", "dir", "type", "object", "super_",
}
# Attribute paths (prefixes) of torch that change global state or escape the stream order.
FORBIDDEN_TORCH_PATHS = (
    "torch.backends", "torch.set_", "torch.cuda.set_stream",
    "torch.cuda.graph", "torch.cuda.CUDAGraph", "torch.cuda.memory", "torch.cuda.empty_cache",
    "torch.cuda.set_device", "torch.cuda._", "torch.cuda.nvtx", "torch.cuda.profiler",
    "torch.profiler", "torch.autograd.profiler", "torch.manual_seed", "torch.seed",
    "torch.random", "torch.library", "torch.ops", "torch.compile", "torch.jit",
    "torch.overrides", "torch.utils._python_dispatch", "torch._", "torch.load", "torch.save",
    "torch.hub", "torch.multiprocessing", "torch.distributed", "torch.use_deterministic",
    "torch.cuda.manual_seed", "torch.cuda.set_sync_debug_mode", "torch.cuda.caching",
    "torch.cuda.memory", "torch.cuda.memory_allocated",
)
ALLOWED_DUNDERS = {"__init__", "__name__"}
REFERENCE_NAMES = {"Model", "get_inputs", "get_init_inputs"}


@dataclass(frozen=True)
class Violation:
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message} [{self.rule}]"


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.aliases: dict[str, str] = {}  # local name -> module path it refers to
        self.checked_chains: set[int] = set()

    def flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", 0), rule, message))

    # -- imports ---------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_IMPORTS:
                self.flag(node, "import", f"import of {alias.name!r} is not allowed in a candidate")
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        if module not in ALLOWED_IMPORTS:
            self.flag(node, "import", f"import from {module!r} is not allowed in a candidate")
            return
        allowed = RESTRICTED_ATTRS.get(module)
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, "import", f"`from {module} import *` hides what is used")
            elif allowed is not None and alias.name not in allowed:
                self.flag(node, "import", f"{module}.{alias.name} is not allowed (only {sorted(allowed)})")
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    # -- names and attributes ----------------------------------------------------------------
    def _resolve(self, node: ast.AST) -> str | None:
        dotted = dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            base = self.aliases[head]
            return f"{base}.{rest}" if rest else base
        return dotted

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in ALLOWED_DUNDERS:
            pass
        elif node.attr.startswith("__") and node.attr.endswith("__"):
            self.flag(node, "dunder", f"access to {node.attr} is not allowed")
        elif node.attr.startswith("_") and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
            # The candidate's own helpers (self._x) are fine; torch._C, x._base and friends are not.
            self.flag(node, "private", f"access to private attribute {node.attr!r} is not allowed")
        if id(node) not in self.checked_chains:
            path = self._resolve(node)
            if path:
                self._check_path(node, path)
                inner = node.value
                while isinstance(inner, ast.Attribute):  # report a chain once, at its full path
                    self.checked_chains.add(id(inner))
                    inner = inner.value
        self.generic_visit(node)

    def _check_path(self, node: ast.AST, path: str) -> None:
        for prefix in FORBIDDEN_TORCH_PATHS:
            if path == prefix or path.startswith(prefix if prefix.endswith(("_", ".")) else prefix + "."):
                self.flag(node, "torch-global", f"{path} changes global state, streams or timers")
                return
        for module, allowed in RESTRICTED_ATTRS.items():
            if path.startswith(module + "."):
                attr = path[len(module) + 1:].split(".")[0]
                if attr not in allowed:
                    self.flag(node, "restricted", f"{module}.{attr} is not allowed (only {sorted(allowed)})")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in REFERENCE_NAMES:
            self.flag(node, "reference", f"the candidate may not use the reference's {node.id}")
        if node.id in FORBIDDEN_CALLS or (node.id.startswith("__") and node.id not in ALLOWED_DUNDERS):
            self.flag(node, "builtin", f"{node.id} is not allowed in a candidate")

    # -- statements --------------------------------------------------------------------------
    def visit_Try(self, node: ast.AST) -> None:
        self.flag(node, "try", "try/except is not allowed: a fallback around the work hides failures")
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def _check_target(self, target: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element)
            return
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            root = target
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.aliases:
                self.flag(target, "patch", f"assignment into module {self.aliases[root.id]!r} is not allowed")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_Global(self, node: ast.AST) -> None:
        self.flag(node, "global", "global/nonlocal state is not allowed")

    visit_Nonlocal = visit_Global

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            if dotted_name(base) in REFERENCE_NAMES:
                self.flag(node, "reference", "ModelNew may not subclass the reference Model")
        self.generic_visit(node)


def check_source(source: str) -> list[Violation]:
    """All violations in the candidate's source; empty means it may run."""
    try:
        tree = pyast.parse(source)
    except SyntaxError as exc:
        return [Violation(exc.lineno or 0, "syntax", f"syntax error: {exc.msg}")]
    checker = _Checker()
    checker.visit(tree)
    has_model_new = any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)
    if not has_model_new:
        checker.flag(tree, "format", "the candidate defines no class ModelNew")
    return sorted(checker.violations, key=lambda v: v.line)


def summarize(violations: list[Violation], limit: int = 3) -> str:
    text = "; ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return text + (f" (+{more} more)" if more > 0 else "")
