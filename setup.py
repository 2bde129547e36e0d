"""Package list only; everything else is in pyproject.toml.

``kernels/`` holds data (CUDA templates, the built-in task suite), not code to import: it is
installed as ``autotuner_kernels`` so that a top-level ``kernels`` never shadows Hugging
Face's ``kernels`` package.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["autotuner*", "evolution*", "archive*"]) + ["autotuner_kernels"],
    package_dir={"autotuner_kernels": "kernels"},
)
