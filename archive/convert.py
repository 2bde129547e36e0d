"""EvalResult <-> database rows, both ways, with nothing lost.

The evaluator's types (``autotuner.evaluator.verdict``) are the single shape of a result;
this module only maps them onto columns. ``to_result`` rebuilds an equal ``EvalResult``
(provenance always present, carrying the stored harness version), which export, import and
the evolution's feedback all rely on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from typing import Any

import autotuner
from archive.models import Evaluation, ShapeRow
from autotuner.evaluator.verdict import EvalResult, KernelResources, Provenance, ShapeResult, Stage, TimingStats, Verdict


def params_hash(params: dict[str, Any]) -> str:
    """Hash of the parameters, independent of key order."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TIMING_FIELDS = tuple(f.name for f in fields(TimingStats))


def _stats(stats: TimingStats | None) -> dict[str, Any] | None:
    # Flat fields: cheaper than dataclasses.asdict's deep copy, which dominated bulk inserts.
    return {name: getattr(stats, name) for name in _TIMING_FIELDS} if stats is not None else None


def _median(stats: TimingStats | None) -> float | None:
    return stats.median_ms if stats is not None else None


def harness_version_of(result: EvalResult) -> str:
    """The harness that produced ``result``; a result without provenance came from this one."""
    if result.provenance is not None and result.provenance.harness_version:
        return result.provenance.harness_version
    return autotuner.HARNESS_VERSION


def evaluation_row(result: EvalResult) -> dict[str, Any]:
    """Column values of one evaluation (without ids, uid or timestamps)."""
    prov = result.provenance or Provenance(harness_version=harness_version_of(result))
    timed = result.timed
    return {
        "verdict": Verdict(result.verdict).value,
        "stage": Stage(result.stage).value,
        "reason": result.reason,
        "policy": result.policy,
        "dtype": result.dtype,
        "harness_version": harness_version_of(result),
        "gpu_name": prov.gpu_name,
        "capability": prov.capability,
        "driver": prov.driver,
        "torch_version": prov.torch_version,
        "torch_cuda": prov.torch_cuda,
        "cupy_version": prov.cupy_version,
        "python_version": prov.python,
        "peak_gbps": prov.peak_gbps,
        "peak_tflops": prov.peak_tflops,
        "seeds": list(prov.seeds),
        "tolerances": dict(prov.tolerances),
        "max_abs_err": result.max_abs_err,
        "speedup_eager": result.speedup_eager,
        "speedup_compile": result.speedup_compile,
        "roofline_fraction": result.roofline_fraction,
        "compile_ms": result.compile_ms,
        "wall_s": result.wall_s,
        "timed_shape": timed.shape if timed else None,
        "candidate_median_ms": _median(timed.candidate) if timed else None,
        "eager_median_ms": _median(timed.eager) if timed else None,
        "compiled_median_ms": _median(timed.compiled) if timed else None,
        "n_shapes": len(result.shapes),
        "warnings": list(result.warnings),
        "kernels_seen": list(result.kernels_seen),
        "resources": [asdict(r) for r in result.resources] or None,
    }


def shape_rows(result: EvalResult) -> list[dict[str, Any]]:
    """Column values of each shape's row (without ``evaluation_id``)."""
    return [
        {
            "position": i,
            "shape": s.shape,
            "hidden": s.hidden,
            "trials": s.trials,
            "passed": s.passed,
            "max_abs_err": s.max_abs_err,
            "max_rel_l2": s.max_rel_l2,
            "candidate": _stats(s.candidate),
            "eager": _stats(s.eager),
            "compiled": _stats(s.compiled),
            "candidate_median_ms": _median(s.candidate),
            "eager_median_ms": _median(s.eager),
            "compiled_median_ms": _median(s.compiled),
            "bytes_moved": s.bytes_moved,
            "flops": s.flops,
            "roofline_ms": s.roofline_ms,
        }
        for i, s in enumerate(result.shapes)
    ]


def _timing(data: dict[str, Any] | None) -> TimingStats | None:
    return TimingStats(**data) if data is not None else None


def to_shape(row: ShapeRow) -> ShapeResult:
    return ShapeResult(
        shape=row.shape,
        hidden=row.hidden,
        trials=row.trials,
        max_abs_err=row.max_abs_err,
        max_rel_l2=row.max_rel_l2,
        passed=row.passed,
        candidate=_timing(row.candidate),
        eager=_timing(row.eager),
        compiled=_timing(row.compiled),
        bytes_moved=row.bytes_moved,
        flops=row.flops,
        roofline_ms=row.roofline_ms,
    )


def to_result(ev: Evaluation, task_name: str = "", task_hash: str = "", candidate_hash: str = "") -> EvalResult:
    """Rebuild the ``EvalResult`` an evaluation row was recorded from."""
    provenance = Provenance(
        harness_version=ev.harness_version,
        gpu_name=ev.gpu_name,
        capability=ev.capability,
        driver=ev.driver,
        torch_version=ev.torch_version,
        torch_cuda=ev.torch_cuda,
        cupy_version=ev.cupy_version,
        python=ev.python_version,
        peak_gbps=ev.peak_gbps,
        peak_tflops=ev.peak_tflops,
        seeds=list(ev.seeds),
        tolerances=dict(ev.tolerances),
    )
    return EvalResult(
        verdict=Verdict(ev.verdict),
        stage=Stage(ev.stage),
        reason=ev.reason,
        task_name=task_name,
        task_hash=task_hash,
        candidate_hash=candidate_hash,
        policy=ev.policy,
        dtype=ev.dtype,
        shapes=[to_shape(s) for s in ev.shapes],
        max_abs_err=ev.max_abs_err,
        speedup_eager=ev.speedup_eager,
        speedup_compile=ev.speedup_compile,
        roofline_fraction=ev.roofline_fraction,
        compile_ms=ev.compile_ms,
        wall_s=ev.wall_s,
        warnings=list(ev.warnings),
        kernels_seen=list(ev.kernels_seen),
        provenance=provenance,
        resources=[KernelResources(**r) for r in ev.resources or []],
    )
