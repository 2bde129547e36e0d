"""Assemble a complete candidate module from a plan and one structural variant.

``ModelNew.__init__`` is the reference's own ``__init__`` (copied from the task's source
with ``ast``), so parameters get the same names, shapes and seeded values, and the scalars the
forward reads (``self.eps``) exist with the values of the shape being run; the tunables are
appended as keyword-only arguments, compiled in as defines. ``forward`` allocates outputs with
``torch.empty`` and launches one kernel per region (or calls ``torch.mm`` / ``conv`` for the
GEMM or convolution under the hybrid policy).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from typing import Any

from autotuner import pyast
from evolution.proposers.rules import kern_col, kern_conv, kern_copy, kern_flash, kern_gemm, kern_pointwise, kern_pool, kern_reduce, kern_row, kern_scan, kern_attention, kern_torch
from evolution.proposers.rules.codegen import PY_HELPERS, Ctx, KernelCode, template_text
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.plan import Plan

GENERATORS = {
    "pointwise": kern_pointwise.generate,
    "row": kern_row.generate,
    "col": kern_col.generate,
    "reduce_all": kern_reduce.generate,
    "scan": kern_scan.generate,
    "attention": kern_attention.generate,
    "flash": kern_flash.generate,
    "mm": kern_torch.generate,
    "conv": kern_torch.generate,
    "copy": kern_copy.generate,
    "pool": kern_pool.generate,
    "dconv": kern_conv.generate,
    "gemm": kern_gemm.generate,
}
_ALLOWED_GLOBALS = {"torch", "nn", "F", "math", "self", "super"} | set(dir(builtins))
_TORCH_IMPORTS = {"torch": "import torch", "nn": "import torch.nn as nn",
                  "F": "import torch.nn.functional as F", "math": "import math"}


@dataclass
class InitCode:
    text: str  # the ``__init__`` function's source
    imports: set[str]  # module aliases it uses (torch, nn, F, math)
    constants: list[str]  # module-level ``NAME = literal`` lines it needs


def reference_init(task_source: str, tunables: dict[str, Any]) -> InitCode:
    """``ModelNew.__init__`` source: the reference's, plus keyword-only tunables."""
    tree = pyast.parse(task_source)
    model = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"), None)
    if model is None:
        raise Unsupported("the task defines no class Model at module level")
    init = next((n for n in model.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        init = pyast.parse("def __init__(self):\n    super().__init__()").body[0]
    init = _rewrite_super(init)
    for arg in init.args.posonlyargs + init.args.args + init.args.kwonlyargs:
        arg.annotation = None  # annotations may name types the candidate does not import
    init.returns = None
    if init.args.vararg or init.args.kwarg:
        raise Unsupported("Model.__init__ takes *args / **kwargs")
    for name, value in tunables.items():
        init.args.kwonlyargs.append(ast.arg(arg=name))
        init.args.kw_defaults.append(ast.Constant(value))
    methods = {n.name for n in model.body if isinstance(n, ast.FunctionDef)}
    used = _free_names(init)
    for node in ast.walk(init):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
                and node.func.attr in methods):
            raise Unsupported(f"Model.__init__ calls its own method {node.func.attr}()")
    constants = _module_constants(tree)
    missing = sorted(used - _ALLOWED_GLOBALS - set(constants))
    if missing:
        raise Unsupported(f"Model.__init__ uses module-level names the candidate cannot carry: {missing}")
    lines = [f"{name} = {constants[name]}" for name in sorted(used) if name in constants]
    init.body.append(pyast.parse("self.rules_setup(" + ", ".join(f"{k}={k}" for k in tunables) + ")").body[0])
    ast.fix_missing_locations(init)
    return InitCode(ast.unparse(init), {n for n in used if n in _TORCH_IMPORTS}, lines)


def _rewrite_super(init: ast.FunctionDef) -> ast.FunctionDef:
    class Fix(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> Any:
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id == "super" and node.args:
                node.args = []
            return node
    return Fix().visit(init)


def _free_names(fn: ast.FunctionDef) -> set[str]:
    bound = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    used = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            used.add(node.id)
    return used


def _module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = literal`` assignments (numbers, strings, tuples of them)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            found[node.targets[0].id] = ast.unparse(node.value)
    return found


def _indent(lines: list[str], n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else "" for line in lines)


def emit_module(task: Any, plan: Plan, variant: dict[str, Any], defines: dict[str, int],
                params_space: dict[str, list], label: str, notes: list[str]) -> str:
    """The candidate's full source text."""
    ctx = Ctx(plan, variant, defines)
    codes: list[KernelCode] = [GENERATORS[r.kind](ctx, r) for r in plan.regions]
    init = reference_init(task.source, defines)
    imports = ["import math", "", "import torch", "import torch.nn as nn"]
    if "F" in init.imports or any(r.kind == "conv" for r in plan.regions):
        imports.append("import torch.nn.functional as F")
    constants = init.constants
    cuda_parts = [template_text("common.cu")] + [c.cuda for c in codes if c.cuda]
    prelude = "\n".join(f"#ifndef {k}\n#define {k} {v}\n#endif" for k, v in sorted(defines.items()))
    source = prelude + "\n\n" + "\n\n".join(cuda_parts)
    has_cuda = any(c.cuda for c in codes)
    archs = sorted({c.arch for c in codes if c.arch})
    if len(archs) > 1:
        raise Unsupported(f"regions that need different targets ({', '.join(archs)}) in one module", None)
    arch_arg = f", arch={archs[0]!r}" if archs else ""
    forward = _forward(task, plan, ctx, codes)
    setup_text = "\n".join(line for c in codes for line in c.setup)
    uses = ["compile_module"] + [fn for fn in ("allow_nonportable_clusters", "max_active_clusters")
                                 if any(f"{fn}(" in f for f in forward) or f"{fn}(" in setup_text]
    imports.append(f"from autotuner.runtime import {', '.join(uses)}")
    doc = [f'"""Rule-based candidate for task {task.name} ({label}).', ""]
    doc += [f"Regions: {', '.join(plan.describe())}."]
    doc += [n for n in notes]
    doc += ['Generated by evolution.proposers.rules; CUDA from kernels/templates."""']
    parts = ["\n".join(doc), f"# TASK: {task.path.name}", "", "\n".join(imports), ""]
    parts += constants + ([""] if constants else [])
    parts.append(f"SOURCE = r'''\n{source}\n'''" if has_cuda else "SOURCE = None")
    parts.append(f"PARAMS = {params_space!r}")
    if has_cuda:  # what rules_setup compiles, readable without running this file (candidate.ahead_plan)
        parts.append(f"COMPILE_AHEAD = {{'source': 'SOURCE', 'defines': {dict(defines)!r}"
                     + (f", 'arch': {archs[0]!r}" if archs else "") + "}")
    parts.append(PY_HELPERS)
    cls = ["", "class ModelNew(nn.Module):", _indent(init.text.splitlines(), 4), ""]
    cls += ["    def rules_setup(self, " + ", ".join(defines) + "):" if defines else "    def rules_setup(self):"]
    cls += ['        """Compile the kernels with the tunables as defines; size grids to the GPU."""']
    cls += ["        self.rules_cfg = {" + ", ".join(f"{k!r}: {k}" for k in defines) + "}"]
    cls += [f"        self.rules_mod = compile_module(SOURCE, defines=self.rules_cfg{arch_arg})" if has_cuda else
            "        self.rules_mod = None"]
    cls += ["        sms = torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count"]
    cls += ["        self.rules_sms = sms"]
    block = defines.get("BLOCK", 256)
    waves = "WAVES" if "WAVES" in defines else "4"
    # WAVES == 0: one block per piece of work (no grid-stride loop), which streams best when
    # the work is much larger than the GPU; else at most WAVES full waves of resident blocks.
    cls += [f"        self.rules_cap = sms * max(1, 2048 // {'BLOCK' if 'BLOCK' in defines else block}) * "
            f"{waves} if {waves} > 0 else RULES_UNCAPPED"]
    setup = [line for c in codes for line in c.setup]
    if setup:  # compute capability and shared memory per block (opt-in: the SM's less 1 KB reserved)
        cls += ["        props = torch.cuda.get_device_properties(torch.cuda.current_device())"]
        cls += ["        self.rules_cc = props.major * 10 + props.minor"]
        cls += ["        self.rules_smem = props.shared_memory_per_multiprocessor - 1024"]
        cls += ["        " + line for line in setup]
    cls += [""]
    cls += forward
    return "\n".join(parts) + "\n" + "\n".join(cls) + "\n"


def _forward(task: Any, plan: Plan, ctx: Ctx, codes: list[KernelCode]) -> list[str]:
    g = plan.graph
    lines = [f"    def forward(self, {', '.join(g.arg_names)}):"]
    if ctx.defines:
        lines.append("        " + ", ".join(ctx.defines) + " = " + ", ".join(
            f"self.rules_cfg[{k!r}]" for k in ctx.defines) + ("," if len(ctx.defines) == 1 else ""))
    for node in g.inputs:
        if any(node.id in r.leaves or any(node in n.operands() for n in r.nodes) for r in plan.regions):
            lines.append(f"        assert {node.name}.is_contiguous(), 'rules kernels read contiguous inputs'")
    for region, code in zip(plan.regions, codes):
        lines.append(f"        # region {region.index}: {region.kind}")
        lines += ["        " + line for line in code.forward]
    outs = [ctx.py(o) for o in g.outputs]
    if g.output_tuple:
        lines.append(f"        return ({', '.join(outs)},)")
    else:
        lines.append(f"        return {outs[0]}")
    return lines
