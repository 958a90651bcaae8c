"""The mgn config file a running ``Lab`` writes: every section pointing at the lab's simulators
(and, with several clusters, the ``clusters:`` list)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import yaml

from mgn_verify.lab._lab_clusters import LabCluster, cluster_entry

if TYPE_CHECKING:
    from mgn_verify.lab._tls import LabCA
    from mgn_verify.lab.headscale import HeadscaleSimulator
    from mgn_verify.lab.hostapp import HostAppSimulator
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator
    from mgn_verify.lab.tailscale import TailscaleSimulator

__all__ = ["current_context", "lab_config"]

_T = TypeVar("_T")


class Lab(Protocol):
    """What the config is made of (``mgn_verify.lab.Lab`` is one; it imports this module)."""

    cluster_id: str
    api_token: str
    rethinkdb_password: str

    @property
    def ca(self) -> LabCA: ...
    @property
    def kube(self) -> KubeSimulator: ...
    @property
    def hostapp(self) -> HostAppSimulator: ...
    @property
    def rethinkdb(self) -> RethinkDBSimulator: ...
    @property
    def tailscale(self) -> TailscaleSimulator: ...
    @property
    def headscale(self) -> HeadscaleSimulator: ...


def _need(value: _T | None, what: str) -> _T:
    if value is None:
        raise RuntimeError(f"lab is not running: no {what}")
    return value


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"simulator URL without a port: {url}")
    return port


def lab_config(lab: Lab, kubeconfig: Path, extras: list[LabCluster]) -> dict[str, Any]:
    """The config for the running ``lab``; ``extras``: its clusters after the first."""
    ca_bundle = str(lab.ca.ca_path)
    hostapp_url = lab.hostapp.url.rstrip("/")
    kube_url = lab.kube.url.rstrip("/")
    return _with_clusters(lab, kubeconfig, extras, {
        "api": {"base_url": hostapp_url, "token": lab.api_token, "ca_bundle": ca_bundle},
        "defaults": {"cluster": lab.cluster_id},
        "kubernetes": {"kubeconfig": str(kubeconfig), "context": current_context(kubeconfig)},
        "rethinkdb": {
            "host": "127.0.0.1",
            "port": lab.rethinkdb.port,
            "user": "admin",
            "password": lab.rethinkdb_password,
            "write_test": True,  # the lab is throwaway: show the write round-trip too
        },
        "tailscale": {
            "socket": lab.tailscale.socket_path,
            # Peers by host name and by MagicDNS name (both forms are accepted).
            "expected_peers": ["guildnet-host", "talos-cp-1.guildnet.lab", "talos-worker-1"],
        },
        "headscale": {
            "url": lab.headscale.url,
            "api_key": lab.headscale.api_key,
            "expected_routes": ["10.96.0.0/12", "10.244.0.0/16"],  # the cluster's services and pods
        },
        "network": {
            "tcp_endpoints": [
                f"127.0.0.1:{_port(kube_url)}",
                f"127.0.0.1:{lab.rethinkdb.port}",
                f"127.0.0.1:{_port(hostapp_url)}",
                f"127.0.0.1:{lab.headscale.port}",
            ],
            "https_endpoints": [f"{hostapp_url}/healthz", f"{kube_url}/livez"],
            "ca_bundle": ca_bundle,
        },
    })


def _with_clusters(lab: Lab, kubeconfig: Path, extras: list[LabCluster], config: dict[str, Any]) -> dict[str, Any]:
    """With extra clusters, the ``clusters:`` list (the first cluster included)."""
    if not extras:
        return config
    entries = [cluster_entry(lab.cluster_id, kubeconfig, current_context(kubeconfig), lab.rethinkdb.port,
                             lab.rethinkdb_password)]
    for extra in extras:
        path = _need(extra.kubeconfig_path, "kubeconfig")
        entries.append(cluster_entry(extra.id, path, current_context(path),
                                     _need(extra.rethinkdb, "rethinkdb").port, extra.rethinkdb_password))
    return {**config, "clusters": entries}


def current_context(kubeconfig: Path) -> str:
    data = yaml.safe_load(kubeconfig.read_text()) or {}
    current = data.get("current-context")
    if current:
        return str(current)
    contexts = data.get("contexts") or []
    if contexts:
        return str(contexts[0]["name"])
    raise ValueError(f"{kubeconfig} names no context")
