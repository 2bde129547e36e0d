"""One small local Ray cluster for every test in tests/cluster (Ray's start is slow: ~10 s).

A head node (no evaluation resource: the driver's side) and two worker nodes, each declaring
two units of a custom resource ``fake_gpu`` that stands in for GPUs on this CPU-only machine;
small object stores, one CPU each, no dashboard. The head also runs a Ray Client server, so the
``ray://`` address form is tested too. Skipped, with the reason, where Ray is not installed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from archive.testing import BackendUnavailable, backend_url

RESOURCE = "fake_gpu"
PER_NODE = 2
STORE_BYTES = 80 * 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _node_environment(cache_dir: str) -> Iterator[None]:
    """Set what a node started now inherits (its workers' cache folder), for that moment only:
    the rest of the session keeps its own environment."""
    saved = os.environ.get("AUTOTUNER_CACHE_DIR")
    os.environ["AUTOTUNER_CACHE_DIR"] = cache_dir
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AUTOTUNER_CACHE_DIR", None)
        else:
            os.environ["AUTOTUNER_CACHE_DIR"] = saved


@dataclass
class LocalCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    client_address: str  # ray://127.0.0.1:PORT
    cache_dir: str  # the nodes' AUTOTUNER_CACHE_DIR (a session temp folder, never the home folder)

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def worker_nodes(self) -> list[Any]:
        return [n for n in self.cluster.worker_nodes]

    def add_worker_node(self) -> Any:
        with _node_environment(self.cache_dir):
            node = self.cluster.add_node(num_cpus=1, resources={RESOURCE: PER_NODE}, object_store_memory=STORE_BYTES)
        self.cluster.wait_for_nodes()
        return node

    def kill(self, node_id: str) -> None:
        """Lose the node whose id is ``node_id`` (its raylet and every worker on it killed at once)."""
        (node,) = [n for n in self.worker_nodes if n.node_id == node_id]
        self.cluster.remove_node(node, allow_graceful=False)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install -e '.[ray]'")
    from ray.cluster_utils import Cluster

    cache_dir = str(tmp_path_factory.mktemp("ray-cache"))
    port = _free_port()
    with _node_environment(cache_dir):
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False, "object_store_memory": STORE_BYTES,
            "ray_client_server_port": port,
        })
    try:
        local = LocalCluster(cluster, f"ray://127.0.0.1:{port}", cache_dir)
        for _ in range(2):
            local.add_worker_node()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        yield local
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def postgres_url(tmp_path: Any) -> Iterator[str]:
    """A fresh PostgreSQL schema (a cluster run's archive); skipped with the reason where none is set."""
    try:
        with backend_url("postgresql", tmp_path) as url:
            yield url
    except BackendUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))
