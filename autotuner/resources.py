"""Where the shipped data lives: ``kernels/`` in a checkout, ``autotuner_kernels`` when installed."""

from __future__ import annotations

from pathlib import Path


def kernels_path(name: str) -> Path:
    """A folder of the kernels data (``"tasks"``, ``"templates"``), wherever it is installed."""
    try:
        import autotuner_kernels  # installed as package data (a namespace package)

        for base in autotuner_kernels.__path__:
            path = Path(base) / name
            if path.is_dir():
                return path
    except ImportError:
        pass
    return Path(__file__).resolve().parent.parent / "kernels" / name
