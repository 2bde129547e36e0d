"""Evaluation workers on a Ray cluster: one actor per GPU, each holding an ``EvalWorker``.

    cluster_config.py  ClusterConfig: the [cluster] table (no Ray import)
    connect.py         importing Ray (an optional extra: pip install -e '.[ray]') and joining a cluster
    actor.py           WorkerActor: the Ray actor, a shell around the single-host pool's EvalWorker
    ray_pool.py        RayPool: the WorkerPool that dispatches jobs to the actors, re-queues lost ones

Importing this package does not import Ray; ``RayPool`` does, when it is built.
"""

from evolution.cluster.actor import WorkerActor
from evolution.cluster.cluster_config import ClusterConfig
from evolution.cluster.ray_pool import RayPool

__all__ = ["ClusterConfig", "RayPool", "WorkerActor"]
