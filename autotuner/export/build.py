"""Choose, re-verify and write the kernels of an exported package.

For each task asked for: the archive's fastest current winner on the GPU (then the next, if
it fails), re-verified by the evaluator before it is written; its source is rewritten to
import the package's own launcher instead of the autotuner's. The package layout::

    OUT/pyproject.toml  README.md  bench.py  tests/conftest.py  tests/test_ops.py
    OUT/NAME/__init__.py   the torch.library custom ops ("NAME::op"), with fake implementations
    OUT/NAME/_ops.py       dispatch: kernel where covered, the PyTorch reference elsewhere
    OUT/NAME/_runtime.py   NVRTC compile + launch on the current stream (CuPy), no autotuner
    OUT/NAME/kernels/OP.py the verified candidate module        NAME/tasks/OP.py its task
    OUT/NAME/metadata.json provenance: archive ids, GPU, versions, speedups, harness, hashes
"""

from __future__ import annotations

import ast
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from autotuner import pyast
from autotuner.deploy.resolve import StoredKernel, Verifier, reverify, stored_kernel
from autotuner.errors import ExportError, NotFoundError
from autotuner.export.introspect import OpSchema, introspect

log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TEMPLATES = Path(__file__).with_name("package_template")


@dataclass
class ExportedOp:
    schema: OpSchema
    kernel: StoredKernel
    source: str  # rewritten for the package
    reverify: dict[str, Any] = field(default_factory=dict)


def check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ExportError(f"package name {name!r} must be a lowercase Python identifier (it is also the op namespace)")


def rewrite_imports(source: str, package: str, what: str) -> str:
    """``from autotuner.runtime import ...`` -> ``from PACKAGE._runtime import ...``; any other
    autotuner import is refused (the package must not need the autotuner)."""
    try:
        tree = pyast.parse(source)
    except SyntaxError as exc:
        raise ExportError(f"{what}: does not parse: {exc}") from None
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if any(n == "autotuner" or n.startswith("autotuner.") for n in names) or (
                module and module.startswith("autotuner") and module != "autotuner.runtime"):
            raise ExportError(f"{what}: imports {module or names} (only `from autotuner.runtime import ...` "
                              "can be replaced by the package's launcher)")
    return re.sub(r"^(\s*)from\s+autotuner\.runtime\s+import", rf"\1from {package}._runtime import", source,
                  flags=re.M)


def choose(archive: Any, ref: str, gpu: str, verifier: Verifier | None, skip_reverify: bool,
           record: bool) -> tuple[StoredKernel, dict[str, Any]]:
    """The fastest winner of task ``ref`` on ``gpu`` that passes re-verification."""
    from autotuner.deploy.resolve import TOP_CANDIDATES, evaluator_verifier

    try:
        rows = archive.best(task=ref, gpu=gpu, top=TOP_CANDIDATES)
    except NotFoundError as exc:
        raise ExportError(str(exc)) from None
    if not rows:
        raise ExportError(f"no verified, current kernel for task {ref!r} on {gpu!r} in {archive.url} "
                          "(stale ones need re-verifying first: `autotuner archive stale`)")
    rows.sort(key=lambda r: (r.candidate_ms, r.evaluation_id))
    reasons = []
    for row in rows:
        kernel = stored_kernel(archive, row)
        if skip_reverify:
            return kernel, {"reverified": False, "reason": "skipped on request (--skip-reverify)"}
        result, why, recorded = reverify(kernel, verifier or evaluator_verifier, archive, record)
        if not why:
            prov = result.provenance if result else None
            return kernel, {"reverified": True, "evaluation_id": recorded, "reason": result.reason if result else "",
                            "gpu": prov.gpu_name if prov else "", "harness_version": prov.harness_version if prov else ""}
        reasons.append(f"kernel {kernel.kernel_id}: {why}")
    raise ExportError(f"task {ref!r}: no kernel passed re-verification: " + "; ".join(reasons))


def collect(archive: Any, tasks: list[str], package: str, gpu: str, verifier: Verifier | None = None,
            skip_reverify: bool = False, record: bool = True) -> list[ExportedOp]:
    from autotuner.deploy.resolve import write_files
    from autotuner.tasks import load_task

    ops: list[ExportedOp] = []
    for ref in tasks:
        kernel, check = choose(archive, ref, gpu, verifier, skip_reverify, record)
        task_path, _ = write_files(kernel)
        schema = introspect(load_task(task_path))
        if any(o.schema.op == schema.op for o in ops):
            raise ExportError(f"two tasks export as op {schema.op!r}; export them in separate packages")
        source = rewrite_imports(kernel.source, package, f"kernel {kernel.kernel_id}")
        ops.append(ExportedOp(schema, kernel, source, check))
    return ops


def metadata(ops: list[ExportedOp], package: str, archive_url: str, gpu: str) -> dict[str, Any]:
    import torch

    import autotuner

    versions = {"autotuner": autotuner.__version__, "harness": autotuner.HARNESS_VERSION, "torch": torch.__version__,
                "torch_cuda": torch.version.cuda}
    try:
        import cupy

        versions["cupy"] = cupy.__version__
    except ImportError:
        versions["cupy"] = None
    out: dict[str, Any] = {"package": package, "namespace": package, "created_at": datetime.now(timezone.utc).isoformat(),
                           "archive": archive_url, "gpu": gpu, "harness_version": autotuner.HARNESS_VERSION,
                           "exported_with": versions, "ops": {}}
    for o in ops:
        k, s = o.kernel, o.schema
        evaluation = k.provenance
        out["ops"][s.op] = {
            "task": k.task, "task_hash": k.task_hash, "kernel_id": k.kernel_id, "evaluation_id": k.evaluation_id,
            "source_hash": k.source_hash, "params": k.params, "dtype": k.dtype, "policy": k.policy, "gpus": [k.gpu],
            "candidate_ms": k.candidate_ms, "eager_ms": k.eager_ms, "compiled_ms": k.compiled_ms,
            "speedup_eager": k.speedup_eager, "speedup_compile": k.speedup_compile, "harness_version": k.harness,
            "evaluated_with": evaluation, "reverification": o.reverify,
            "inputs": [asdict(a) for a in s.inputs], "weights": s.weights, "init_args": [asdict(a) for a in s.init_args],
            "outputs": s.outputs, "test_shape": s.test_shape,
        }  # fmt: skip
    return out


def render_init(ops: list[ExportedOp], package: str) -> str:
    lines = [f'"""Verified CUDA kernels as torch.library custom ops ("{package}::<op>"), exported by the autotuner.',
             "",
             "Each op launches its kernel on the current CUDA stream where the GPU, dtype and shape are",
             "covered (see metadata.json), and runs the PyTorch reference everywhere else. Fake",
             "implementations make the ops traceable by torch.compile(fullgraph=True); call each op once",
             "before capturing a CUDA graph (the first call compiles the kernel with NVRTC).",
             '"""', "", "from __future__ import annotations", "", "import torch", "",
             "from . import _ops", "from ._ops import METADATA, explain, stats", "",
             f"__all__ = [\"METADATA\", \"explain\", \"stats\", {', '.join(repr(o.schema.op) for o in ops)}]", ""]
    for o in ops:
        s = o.schema
        inputs = ", ".join(a.name for a in s.inputs) + ("," if len(s.inputs) == 1 else "")
        weights = ", ".join(f"{w!r}: {w.replace('.', '_')}" for w in s.weights)
        init = ", ".join(s.init_order()) + ("," if len(s.init_args) == 1 else "")
        call = f"(\"{s.op}\", ({inputs}), {{{weights}}}, ({init}))"
        lines += ["", f"@torch.library.custom_op(\"{package}::{s.op}\", mutates_args=())",
                  f"def {s.op}({s.python_args()}) -> {s.returns()}:",
                  f"    \"\"\"{o.kernel.task}: kernel {o.kernel.kernel_id} of the archive (see metadata.json).\"\"\"",
                  f"    return _ops.run{call}", "", "",
                  f"@{s.op}.register_fake",
                  f"def _{s.op}_fake({s.python_args()}) -> {s.returns()}:",
                  f"    return _ops.fake{call}", ""]
    return "\n".join(lines)


def render_pyproject(package: str, version: str) -> str:
    return f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{package.replace('_', '-')}"
version = "{version}"
description = "Verified CUDA kernels as torch.library custom ops, exported by the autotuner"
requires-python = ">=3.10"
dependencies = ["torch>=2.4", "numpy"]

[project.optional-dependencies]
cuda12 = ["cupy-cuda12x>=13"]
cuda13 = ["cupy-cuda13x>=13.6"]
test = ["pytest>=7"]

[tool.setuptools]
packages = ["{package}", "{package}.kernels", "{package}.tasks"]

[tool.setuptools.package-data]
"{package}" = ["metadata.json"]

[tool.pytest.ini_options]
addopts = "-ra --strict-markers"
markers = ["gpu: needs a CUDA GPU and CuPy; skipped with a reason elsewhere"]
'''


def render_readme(ops: list[ExportedOp], package: str, meta: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `torch.ops.{package}.{o.schema.op}({o.schema.python_args()})` | {o.kernel.dtype} | "
        f"{o.kernel.speedup_eager or 0:.2f}x | {o.kernel.speedup_compile or 0:.2f}x | {o.kernel.kernel_id} |"
        for o in ops)
    return f"""# {package}

Verified CUDA kernels exported by the autotuner (harness {meta['harness_version']}) from
{meta['archive']}, verified on {meta['gpu']}.

```bash
pip install .[cuda12]        # or .[cuda13]; without CuPy every op runs its PyTorch reference
python -m pytest tests       # CPU: the reference path and tracing; GPU: the kernels too
python bench.py              # kernel vs PyTorch eager vs torch.compile, per op (GPU)
```

| op | dtype | vs eager | vs torch.compile | archive kernel |
| --- | --- | --- | --- | --- |
{rows}

Speedups are the archive's measurements at each task's default shape. `{package}.explain(op_name,
*args)` says whether a call runs the kernel or the reference, and why; `${package.upper()}_DISABLE_KERNELS=1`
forces the reference. `metadata.json` holds the provenance.
"""


def write_package(ops: list[ExportedOp], out: Path, package: str, meta: dict[str, Any], version: str = "0.1.0") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    pkg = out / package
    for sub in (pkg, pkg / "kernels", pkg / "tasks", out / "tests"):
        sub.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(render_init(ops, package))
    for name in ("_ops.py", "_runtime.py"):
        (pkg / name).write_text((TEMPLATES / name).read_text())
    (pkg / "kernels" / "__init__.py").write_text('"""The verified candidate modules, one per op."""\n')
    (pkg / "tasks" / "__init__.py").write_text('"""The PyTorch references (task files), one per op."""\n')
    for o in ops:
        (pkg / "kernels" / f"{o.schema.op}.py").write_text(o.source)
        (pkg / "tasks" / f"{o.schema.op}.py").write_text(o.kernel.task_source)
    (pkg / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (out / "pyproject.toml").write_text(render_pyproject(package, version))
    (out / "README.md").write_text(render_readme(ops, package, meta))
    (out / "tests" / "conftest.py").write_text((TEMPLATES / "conftest_template.py").read_text())
    (out / "tests" / "test_ops.py").write_text((TEMPLATES / "test_ops_template.py").read_text().replace("PACKAGE_NAME", package))
    (out / "bench.py").write_text((TEMPLATES / "bench_template.py").read_text().replace("PACKAGE_NAME", package))
    return out
