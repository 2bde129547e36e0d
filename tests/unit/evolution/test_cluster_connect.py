"""Joining a Ray cluster (evolution/cluster/connect.py) without Ray: a Ray Client session whose
server-side start fails transiently is retried; any other failure is one clear error at once."""

from __future__ import annotations

import pytest

from autotuner.errors import ClusterError
from evolution.cluster import connect as connect_module


class FakeRay:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.inits = 0
        self.shutdowns = 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs) -> None:  # noqa: ANN003
        self.inits += 1
        if self.failures:
            raise self.failures.pop(0)

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture(autouse=True)
def no_wait(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(connect_module, "CLIENT_RETRY_S", 0.0)


def test_a_transient_client_start_failure_is_retried() -> None:
    ray = FakeRay([ConnectionError("Initialization failure from server:")] * 2)
    assert connect_module.connect(ray, "ray://127.0.0.1:10001") is True
    assert ray.inits == 3 and ray.shutdowns == 2


def test_retries_are_bounded_and_end_in_one_clear_error() -> None:
    ray = FakeRay([ConnectionError("Initialization failure from server:")] * 10)
    with pytest.raises(ClusterError, match="cannot join the Ray cluster at ray://h:10001"):
        connect_module.connect(ray, "ray://h:10001")
    assert ray.inits == connect_module.CLIENT_ATTEMPTS


def test_other_failures_and_plain_addresses_are_not_retried() -> None:
    ray = FakeRay([ConnectionError("connection refused")])
    with pytest.raises(ClusterError, match="connection refused"):
        connect_module.connect(ray, "ray://h:10001")
    assert ray.inits == 1
    ray = FakeRay([ConnectionError("Initialization failure from server:")])
    with pytest.raises(ClusterError):
        connect_module.connect(ray, "127.0.0.1:6379")  # not Ray Client: no server-side session to retry
    assert ray.inits == 1
