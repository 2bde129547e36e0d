"""Reaching Ray: importing it (an optional extra) and joining the cluster, with errors that say
what to do. The only module that calls ``ray.init``."""

from __future__ import annotations

import logging
from typing import Any

from autotuner.errors import ClusterError
from evolution.cluster.cluster_config import ClusterConfig

log = logging.getLogger(__name__)

INSTALL = ("--cluster runs the evaluation workers on Ray, which is not installed here: "
           "pip install -e '.[ray]' (or pip install 'autotuner[ray]'); without --cluster, "
           "tune uses this machine's GPUs (--gpus)")


def import_ray() -> Any:
    """The ``ray`` module, or a ``ClusterError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL) from None
    return ray


# Ray Client's server starts a process per client, and that start can fail transiently (its
# gRPC threads racing the fork: "Initialization failure from server"); a new attempt succeeds.
CLIENT_ATTEMPTS = 4
CLIENT_RETRY_S = 2.0


def connect(ray: Any, address: str) -> bool:
    """Join the cluster at ``address``; True if this call connected (and should disconnect)."""
    import time

    if ray.is_initialized():
        log.debug("already connected to a Ray cluster; using it")
        return False
    attempts = CLIENT_ATTEMPTS if address.startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
            return True
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            if attempt == attempts or "Initialization failure from server" not in str(exc):
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ClusterError(
                    f"cannot join the Ray cluster at {address}: {reason}. Start one (ray start --head) or check the "
                    "address: --cluster auto (this machine is a node), ray://HOST:10001 (Ray Client) or HOST:6379"
                ) from None
            log.warning("Ray Client at %s failed to start a session (attempt %d of %d); retrying", address, attempt,
                        attempts)
            try:
                ray.shutdown()
            except Exception:  # noqa: BLE001 - nothing was connected
                pass
            time.sleep(CLIENT_RETRY_S * attempt)
    return True


def worker_count(ray: Any, cluster: ClusterConfig) -> int:
    """How many workers to start: one per unit of the cluster's resource, capped by ``workers``."""
    total = int(ray.cluster_resources().get(cluster.resource, 0))
    if total < 1:
        raise ClusterError(
            f"the Ray cluster at {cluster.address} offers no {cluster.resource!r} resource, so no evaluation "
            f"worker can start: add GPU nodes (ray start --num-gpus N), or name the resource its nodes "
            f"declare in [cluster] resource"
        )
    return min(total, cluster.workers) if cluster.workers else total
