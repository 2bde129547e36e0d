"""LLM-driven CUDA kernel autotuner.

The data path runs one way: task -> proposer -> candidate -> runtime -> evaluator -> archive
-> deploy/export. This package holds the application side of it (tasks, runtime, evaluator,
CLI); the search lives in ``evolution`` and the store in ``archive``.
"""

__version__ = "0.1.0"

# Bumped whenever verification or timing changes in a way that could change a verdict or a
# number; stored results from an older harness are stale until re-verified.
HARNESS_VERSION = "1"

__all__ = ["__version__", "HARNESS_VERSION"]
