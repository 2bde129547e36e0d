"""One root exception for the project; third-party errors are translated at the boundary.

Every error says what went wrong and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass


class AutotunerError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(AutotunerError):
    """A configuration value or file is invalid."""


class TaskLoadError(AutotunerError):
    """A task file cannot be loaded; names the file and the fault."""

    def __init__(self, path: str, fault: str) -> None:
        self.path = str(path)
        self.fault = fault
        super().__init__(f"task {self.path}: {fault}")


class CandidateLoadError(AutotunerError):
    """A candidate file cannot be read or parsed."""

    def __init__(self, path: str, fault: str) -> None:
        self.path = str(path)
        self.fault = fault
        super().__init__(f"candidate {self.path}: {fault}")


class NoGPUError(AutotunerError):
    """The operation needs a CUDA GPU and none is visible."""


class CupyMissingError(AutotunerError):
    """CuPy is not installed; the NVRTC runtime needs it."""

    def __init__(self) -> None:
        super().__init__(
            "CuPy is not installed. Install the extra matching your CUDA: "
            "pip install 'autotuner[cuda12]' (cupy-cuda12x) or 'autotuner[cuda13]' (cupy-cuda13x)."
        )


@dataclass(frozen=True)
class Diagnostic:
    """One compiler message, with the line in the candidate's own source (1-based)."""

    line: int | None
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "?"
        return f"{where}: {self.severity}: {self.message}"


class CompileError(AutotunerError):
    """CUDA source failed to compile; ``diagnostics`` holds the structured messages."""

    def __init__(self, kernel_hint: str, diagnostics: list[Diagnostic], log: str) -> None:
        self.diagnostics = list(diagnostics)
        self.log = log
        errors = [d for d in self.diagnostics if d.severity == "error"] or self.diagnostics
        first = "; ".join(str(d) for d in errors[:3]) or log.strip()[:500]
        super().__init__(f"CUDA compile failed ({kernel_hint}): {first}")


class LaunchError(AutotunerError):
    """A kernel launch was given arguments that do not fit its signature."""


class EvaluationError(AutotunerError):
    """The harness itself failed (not the candidate): a bug or a broken environment."""



class ArchiveError(AutotunerError):
    """The archive refused an operation: bad input, a schema it does not know, a conflict."""


class ArchiveUnreachableError(ArchiveError):
    """The archive's database cannot be opened or reached (server down, bad URL, not a DB)."""


class NotFoundError(ArchiveError):
    """An id, name or hash names nothing in the archive."""


class ArchiveImportError(ArchiveError):
    """A JSON-lines file cannot be imported; names the file and line. Nothing was written."""

    def __init__(self, path: str, line: int, fault: str) -> None:
        self.path = str(path)
        self.line = line
        self.fault = fault
        super().__init__(f"{self.path} line {line}: {fault} (nothing was imported)")


class ProposerError(AutotunerError):
    """A proposer could not produce proposals for a reason outside the task (e.g. no endpoint)."""


class LLMUnavailableError(ProposerError):
    """The LLM endpoint cannot be reached or refuses the key; says which URL and what to check."""


class ClusterError(AutotunerError):
    """Evaluation workers on a cluster cannot be used: Ray is missing or unreachable, the cluster
    has no GPU to give, the workers run another harness, or the archive cannot be shared."""


class WorkerLostError(ClusterError):
    """An evaluation could not be finished because the workers running it kept dying, or none
    is left; the claims it held are released, so ``tune --resume`` picks the work up again."""


class BudgetExhausted(AutotunerError):
    """A run budget (tokens, money, candidates, wall time) is spent."""


class ShareSpent(AutotunerError):
    """One task's fair share of the run's budget is spent: the run goes on with the next task."""


class ParseError(ProposerError):
    """A model's response holds no usable candidate module; ``reason`` says why.

    The LLM proposer records it as a failed proposal (data), it never escapes ``propose``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class WeightsError(AutotunerError):
    """A checkpoint cannot be loaded into the engine: missing, unexpected or misshapen tensors."""


class ExportError(AutotunerError):
    """A kernel package cannot be exported: no verified kernel, a task it cannot express, a bad name."""
