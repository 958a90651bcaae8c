"""Fixtures shared by every lab test (found automatically; the helpers and delays they use are
in ``tests.lab.helpers``).

Everything runs on 127.0.0.1 with TLS verified against a per-test lab CA.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._tls import LabCA
from mgn_verify.lab.hostapp import HostAppSimulator
from mgn_verify.lab.kube import KubeSimulator
from tests.lab.helpers import PENDING_DELAY, RUNNING_DELAY, SLOW_DELAY, TOKEN


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
