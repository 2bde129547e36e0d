"""Where the shipped data lives: ``kernels/`` in a checkout, ``autotuner_kernels`` when installed."""

from __future__ import annotations

from pathlib import Path


def kernels_path(name: str) -> Path:
    """A folder of the kernels data (``"tasks"``, ``"templates"``), wherever it is installed.

    A source checkout's own ``kernels/`` comes first: with the package installed editable from
    another checkout (a git worktree), ``autotuner_kernels`` would point at that one's data,
    and this checkout's code would run with another checkout's templates."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "kernels" / name).is_dir():
        return root / "kernels" / name
    try:
        import autotuner_kernels  # installed as package data (a namespace package)

        for base in autotuner_kernels.__path__:
            path = Path(base) / name
            if path.is_dir():
                return path
    except ImportError:
        pass
    return root / "kernels" / name
