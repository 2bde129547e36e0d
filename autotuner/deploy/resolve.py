"""Bind slots to kernels: the archive's best verified, current kernel, re-verified before use.

For each slot: the task for the engine's dtype (``slots.SLOT_TASKS``), the archive's winners
for that task on this GPU (``Archive.best``: accepted by the current harness, never
rejected there; stale results are left out), the fastest first. A winner is written to a
cache file with the task source the archive stored, re-verified by the evaluator (a fresh
child process, fresh inputs, every shape), checked against the slot's PyTorch implementation
at the engine's own dims, and only then loaded. Each step that fails leaves the slot on
PyTorch with the reason; the re-verification's verdict is recorded in the archive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autotuner.deploy.slots import (DEFAULT_SLOTS, OPT_IN_SLOTS, PROBE_TOKENS, SLOT_NAMES, SLOT_TASKS, SlotBinding, Slots,
                                    attention_not_covered, probe_inputs)
from autotuner.errors import AutotunerError, CupyMissingError, NoGPUError, NotFoundError
from autotuner.evaluator.verdict import EvalResult

log = logging.getLogger(__name__)

Verifier = Callable[[Path, Path, dict[str, Any]], EvalResult]
TOP_CANDIDATES = 3  # winners tried per slot before falling back to PyTorch


@dataclass(frozen=True)
class StoredKernel:
    """A winner read back from the archive, with the task it was verified against."""

    kernel_id: int
    evaluation_id: int
    task: str
    task_hash: str
    task_source: str
    source: str
    params: dict[str, Any]
    gpu: str
    dtype: str
    policy: str
    speedup_eager: float | None
    speedup_compile: float | None
    candidate_ms: float | None
    eager_ms: float | None
    compiled_ms: float | None
    harness: str
    source_hash: str = ""
    provenance: dict[str, Any] | None = None  # the winning evaluation's (GPU, driver, versions, seeds)


def suite_task(relative: str) -> Path:
    from autotuner.tasks import suite_dir

    return suite_dir() / relative


def current_gpu() -> str | None:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def winners(archive: Any, task_file: Path, dtype: str, gpu: str, top: int = TOP_CANDIDATES) -> list[StoredKernel]:
    """The fastest current winners for the task (this exact file first, then any version of its name)."""
    from autotuner.tasks import content_hash

    rows = []
    for ref in (content_hash(task_file.read_text()), task_file.stem):
        try:
            rows = [r for r in archive.best(task=ref, gpu=gpu, top=top) if r.dtype == dtype]
        except NotFoundError:
            rows = []
        if rows:
            break
    rows.sort(key=lambda r: (r.candidate_ms, r.evaluation_id))
    return [stored_kernel(archive, row) for row in rows[:top]]


def stored_kernel(archive: Any, row: Any) -> StoredKernel:
    """A ``BestRow`` with its kernel's source and parameters and its task's stored source."""
    from dataclasses import asdict

    detail = archive.kernel(row.kernel_id)
    prov = archive.result(row.evaluation_id).provenance
    return StoredKernel(
        kernel_id=row.kernel_id, evaluation_id=row.evaluation_id, task=row.task, task_hash=detail.task_hash,
        task_source=archive.task_source(detail.task_hash), source=detail.source, params=dict(detail.params),
        gpu=row.gpu, dtype=row.dtype, policy=row.policy, speedup_eager=row.speedup_eager,
        speedup_compile=row.speedup_compile, candidate_ms=row.candidate_ms, eager_ms=row.eager_ms,
        compiled_ms=row.compiled_ms, harness=row.harness, source_hash=detail.source_hash,
        provenance=asdict(prov) if prov is not None else None,
    )  # fmt: skip


def no_winner_reason(archive: Any, task_file: Path, dtype: str, gpu: str) -> str:
    """Why there is nothing to bind: no kernel at all, or only stale ones (and what to run)."""
    try:
        stale = [r for r in archive.best(task=task_file.stem, gpu=gpu, include_stale=True) if r.dtype == dtype]
    except NotFoundError:
        return f"no kernel for task {task_file.stem} in the archive"
    if stale:
        return (f"only stale kernels for {task_file.stem} on {gpu} (harness {stale[0].harness}); "
                f"re-verify them (`autotuner archive stale`)")
    return f"no verified kernel for {task_file.stem} ({dtype}) on {gpu}"


def write_files(kernel: StoredKernel) -> tuple[Path, Path]:
    """The task and the kernel as files (the evaluator and the importer read files)."""
    from autotuner.candidate import source_hash
    from autotuner.runtime.compile import cache_root

    root = cache_root() / "deploy"
    task_path = root / "tasks" / kernel.task_hash[:16] / f"{kernel.task}.py"
    cand_path = root / "kernels" / f"kernel_{kernel.kernel_id}_{source_hash(kernel.source)[:12]}.py"
    for path, text in ((task_path, kernel.task_source), (cand_path, kernel.source)):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    return task_path, cand_path


def evaluator_verifier(task_path: Path, candidate_path: Path, params: dict[str, Any]) -> EvalResult:
    """Full verification (every shape, fresh inputs, integrity checks), no timing; then the
    winner gate: compute-sanitizer memcheck, racecheck and initcheck on a small shape."""
    from autotuner.evaluator import EvalConfig, evaluate
    from autotuner.evaluator.sanitize import winner_gate

    config = EvalConfig(time_candidate=False, baselines=False)
    result = evaluate(task_path, candidate_path, config=config, params=params)
    return winner_gate(result, task_path, candidate_path, params)


def reverify(kernel: StoredKernel, verifier: Verifier, archive: Any | None, record: bool) -> tuple[EvalResult | None, str, int | None]:
    """(result, reason if it failed, id of the recorded evaluation)."""
    task_path, cand_path = write_files(kernel)
    try:
        result = verifier(task_path, cand_path, kernel.params)
    except NoGPUError:
        return None, "re-verification needs a GPU (none visible); the kernel stays unused", None
    except CupyMissingError as exc:
        return None, f"re-verification needs CuPy: {exc}", None
    recorded = None
    if record and archive is not None and result.verdict.value != "error":
        recorded = archive.record_evaluation(kernel.kernel_id, result)
    if not result.accepted:
        return result, f"re-verification {result.verdict.value} at {result.stage.value}: {result.reason}", recorded
    return result, "", recorded


def load_model_new(candidate_path: Path) -> type:
    from autotuner.candidate import import_candidate

    module = import_candidate(candidate_path)
    model_new = getattr(module, "ModelNew", None)
    if not isinstance(model_new, type):
        raise AutotunerError(f"{candidate_path} defines no ModelNew class")
    return model_new


def probe(binding: SlotBinding, cfg: Any, dtype: torch.dtype, device: torch.device) -> str:
    """'' if the kernel matches the slot's PyTorch implementation at the engine's dims, else why not."""
    from autotuner.evaluator.compare import compare_outputs, tolerances_for

    tol = tolerances_for(str(dtype).removeprefix("torch."))
    slots = Slots({binding.slot: binding})
    generator = torch.Generator(device=device).manual_seed(0x51075)
    for tokens in PROBE_TOKENS:
        run, reference = probe_inputs(binding.slot, cfg, tokens, dtype, device, generator)
        try:
            with torch.no_grad():
                out, ref = run(slots), reference()
        except Exception as exc:  # noqa: BLE001 - the kernel's failure is the reason, not a crash
            return f"failed at the engine's dims ({tokens} tokens): {type(exc).__name__}: {str(exc)[:200]}"
        verdict = compare_outputs(out, ref, tol)
        if not verdict.ok:
            return f"differs from PyTorch at the engine's dims ({tokens} tokens): {verdict.reason}"
    return ""


def bind_slot(slot: str, archive: Any | None, dtype: str, gpu: str | None, cfg: Any = None, *,
              verifier: Verifier | None = None, record: bool = True, device: torch.device | None = None) -> SlotBinding:
    """Resolve one slot; never raises for a kernel's fault (the binding says why it is PyTorch)."""
    task_rel = SLOT_TASKS[slot].get(dtype)
    if task_rel is None:
        return SlotBinding(slot, f"no task for {slot} in {dtype}")
    task_file = suite_task(task_rel)
    if archive is None:
        return SlotBinding(slot, "no archive given", task=task_file.stem)
    if gpu is None:
        return SlotBinding(slot, "no CUDA GPU: kernels need one", task=task_file.stem)
    if slot in ("attention_decode", "attention_o_residual") and cfg is not None:
        why = attention_not_covered(cfg.head_dim, cfg.attention_scale)
        if why:
            return SlotBinding(slot, why, task=task_file.stem)
    found = winners(archive, task_file, dtype, gpu)
    if not found:
        return SlotBinding(slot, no_winner_reason(archive, task_file, dtype, gpu), task=task_file.stem)
    reasons = []
    for kernel in found:
        binding = SlotBinding(slot, task=kernel.task, kernel_id=kernel.kernel_id, evaluation_id=kernel.evaluation_id,
                              params=kernel.params, speedup_eager=kernel.speedup_eager, gpu=kernel.gpu)
        why = _try_kernel(binding, kernel, archive, cfg, dtype, verifier, record, device)
        if not why:
            return binding
        reasons.append(f"kernel {kernel.kernel_id}: {why}")
        log.warning("slot %s: kernel %d not used: %s", slot, kernel.kernel_id, why)
    return SlotBinding(slot, "; ".join(reasons), task=found[0].task)


def _try_kernel(binding: SlotBinding, kernel: StoredKernel, archive: Any, cfg: Any, dtype: str,
                verifier: Verifier | None, record: bool, device: torch.device | None) -> str:
    _, why, recorded = reverify(kernel, verifier or evaluator_verifier, archive, record)
    if why:
        return why
    binding.reverify_evaluation_id = recorded
    try:
        binding.model_new = load_model_new(write_files(kernel)[1])
    except Exception as exc:  # noqa: BLE001 - a kernel that fails to load is a reason, not a crash
        return f"failed to load: {type(exc).__name__}: {str(exc)[:200]}"
    if cfg is not None:
        from autotuner.evaluator.inputs import DTYPE_BY_NAME

        dev = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        why = probe(binding, cfg, DTYPE_BY_NAME[dtype], dev)
        if why:
            binding.model_new = None
            return why
    return ""


def resolve_slots(archive: Any | None, dtype: str, cfg: Any = None, gpu: str | None = None, *,
                  verifier: Verifier | None = None, record: bool = True, slots: tuple[str, ...] = DEFAULT_SLOTS,
                  device: torch.device | None = None, jobs: int = 4) -> Slots:
    """Bind every slot for an engine of ``cfg`` in ``dtype`` on ``gpu`` (default: this machine's).

    ``jobs`` slots are bound at a time: each re-verification is a child process (and its winner
    gate three compute-sanitizer runs), so ten slots one after another took minutes of waiting.
    (``slots``: the ones to bind; the rest run PyTorch, or their op-by-op slots: OPT_IN_SLOTS says
    why those are left out by default.)"""
    gpu = gpu or current_gpu()
    wanted = [slot for slot in SLOT_NAMES if slot in slots]

    def bind(slot: str) -> SlotBinding:
        return bind_slot(slot, archive, dtype, gpu, cfg, verifier=verifier, record=record, device=device)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(wanted) or 1))) as pool:
        bound = dict(zip(wanted, pool.map(bind, wanted)))
    bindings = {slot: bound.get(slot) or SlotBinding(slot, OPT_IN_SLOTS.get(slot, "not requested")) for slot in SLOT_NAMES}
    for slot, binding in bindings.items():
        log.info("slot %s: %s", slot, binding.describe())
    return Slots(bindings)
