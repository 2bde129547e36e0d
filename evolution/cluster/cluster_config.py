"""The ``[cluster]`` table: where evaluation workers run when they are not this machine's GPUs.

A frozen dataclass like the other tables (``autotuner.app.run_config`` builds the pydantic
model that checks a config file against it). Nothing here imports Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

# "auto" (a Ray cluster this machine belongs to), "ray://HOST:PORT" (Ray Client, from outside the
# cluster) or "HOST:PORT" (the cluster's GCS address, from one of its nodes).
ADDRESS_PATTERN = r"^(auto|ray://[^\s/]+|[A-Za-z0-9_.\-\[\]:]+:[0-9]+)$"


@dataclass(frozen=True)
class ClusterConfig:
    address: str | None = None  # None: the single-host pool (this machine's GPUs, --gpus)
    resource: str = "GPU"  # the Ray resource one worker takes one unit of ("GPU": num_gpus=1)
    workers: int | None = None  # at most this many workers (default: one per unit of the resource)
    lease_s: float = 120.0  # a driver silent this long has its claims taken over by others
    start_timeout_s: float = 300.0  # how long to wait for the first worker to start
    worker_wait_s: float = 600.0  # with every worker lost, how long to wait for one before failing
    max_attempts: int = 3  # times a job may be started on workers that die before it fails

    @property
    def enabled(self) -> bool:
        return self.address is not None
