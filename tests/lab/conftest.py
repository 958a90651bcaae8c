"""Helpers and fixtures shared by every lab test (tests/lab has no ``__init__``: import the
helpers with ``from conftest import ...``; the fixtures are found automatically).

Everything runs on 127.0.0.1 with TLS verified against a per-test lab CA. Delays are short so
the operator's status transitions and the slow fault stay fast.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tls import LabCA
from mgn_verify.lab.hostapp import HostAppSimulator
from mgn_verify.lab.kube import KubeSimulator

PENDING_DELAY = 0.3
RUNNING_DELAY = 0.8
SLOW_DELAY = 1.5
TOKEN = "test-token-0123456789"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def refused(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to ``host:port`` is refused (nothing listens there)."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def lab_ca(tmp_path: Path) -> LabCA:
    return LabCA(tmp_path / "pki")


@pytest.fixture
def lab_faults() -> FaultSet:
    return FaultSet(KubeSimulator.FAULTS | HostAppSimulator.FAULTS)


@pytest.fixture
def kube_sim(lab_ca: LabCA, lab_faults: FaultSet) -> Iterator[KubeSimulator]:
    with KubeSimulator(
        ca=lab_ca,
        faults=lab_faults,
        token=TOKEN,
        slow_delay=SLOW_DELAY,
        workspace_pending_delay=PENDING_DELAY,
        workspace_running_delay=RUNNING_DELAY,
    ) as sim:
        yield sim


@pytest.fixture
def kubeconfig_path(kube_sim: KubeSimulator, tmp_path: Path) -> Path:
    return kube_sim.write_kubeconfig(tmp_path / "kubeconfig.yaml")


@pytest.fixture
def kube_api(kubeconfig_path: Path) -> Iterator[client.ApiClient]:
    """A real ``kubernetes`` ApiClient loaded from the simulator's kubeconfig file."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig_path), client_configuration=cfg)
    cfg.retries = 0  # fault tests want the first failure, not urllib3's retries
    api = client.ApiClient(cfg)
    yield api
    api.close()


@pytest.fixture
def ca_context(lab_ca: LabCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(lab_ca.ca_path))


@pytest.fixture
def hostapp_sim(lab_ca: LabCA, lab_faults: FaultSet, kube_sim: KubeSimulator) -> Iterator[HostAppSimulator]:
    with HostAppSimulator(ca=lab_ca, faults=lab_faults, kube=kube_sim, cluster_id="lab") as sim:
        yield sim


@pytest.fixture
def hostapp_http(hostapp_sim: HostAppSimulator, ca_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hostapp_sim.url, verify=ca_context, timeout=5.0) as http:
        yield http
