"""The extra clusters of a multi-cluster ``Lab``: each one's simulators, secrets and faults."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgn_verify.lab._faults import FaultSet

if TYPE_CHECKING:
    from mgn_verify.lab._tls import LabCA
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator

__all__ = ["LabCluster", "cluster_entry", "cluster_faults", "prober", "start_cluster"]


def cluster_faults() -> frozenset[str]:
    """The faults one extra cluster of a multi-cluster lab knows: its API server's, its
    database's, and ``hostapp.no_kubeconfig`` (the Host App lost this cluster's kubeconfig)."""
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator

    return KubeSimulator.FAULTS | RethinkDBSimulator.FAULTS | {"hostapp.no_kubeconfig"}


@dataclass
class LabCluster:
    """One cluster of the lab: its simulators, kubeconfig, secrets and fault set. For the first
    cluster ``faults`` is the lab's shared set."""

    id: str
    faults: FaultSet
    kube_token: str
    rethinkdb_password: str
    kube: KubeSimulator | None = None
    rethinkdb: RethinkDBSimulator | None = None
    kubeconfig_path: Path | None = None


def start_cluster(stack: contextlib.ExitStack, cluster: LabCluster, ca: LabCA, workdir: Path, *,
                  bare: bool = False) -> None:
    """An extra cluster: its own API server and database, on its own fault set."""
    from mgn_verify.lab.kube import KubeSimulator
    from mgn_verify.lab.rethinkdb import RethinkDBSimulator

    kube = KubeSimulator(ca=ca, faults=cluster.faults, token=cluster.kube_token, bare=bare)
    cluster.kube = kube
    kube.start()
    stack.callback(kube.stop)
    cluster.kubeconfig_path = kube.write_kubeconfig(workdir / f"kubeconfig-{cluster.id}.yaml")
    rethinkdb = RethinkDBSimulator(faults=cluster.faults, password=cluster.rethinkdb_password, cluster_id=cluster.id)
    cluster.rethinkdb = rethinkdb
    rethinkdb.start()
    stack.callback(rethinkdb.stop)
    kube.state.set_rethinkdb_endpoint(rethinkdb.host, rethinkdb.port)


def cluster_entry(cluster_id: str, kubeconfig: Path, context: str, port: int, password: str) -> dict[str, Any]:
    """One ``clusters:`` entry, in the shape ``checks/_clusters.py`` accepts."""
    return {
        "id": cluster_id,
        "kubeconfig": str(kubeconfig),
        "context": context,
        "rethinkdb": {"host": "127.0.0.1", "port": port, "user": "admin", "password": password},
    }


def prober(rethinkdb: RethinkDBSimulator, kube: KubeSimulator | None = None) -> Callable[[str, int], str | None]:
    """The Host App's probe of one cluster's database: whatever address the cluster's Service
    gives, the database it reaches is this simulator, so ``rethinkdb.down`` shows there; and
    only through a Service with a ready pod behind it (an install whose StatefulSet is not
    ready yet is refused, as the LoadBalancer would refuse it)."""

    def probe(host: str, port: int) -> str | None:
        if kube is not None and not kube.state.service_endpoints("default", "rethinkdb"):
            return f"dial tcp {host}:{port}: connect: connection refused"
        try:
            with socket.create_connection(("127.0.0.1", rethinkdb.port), timeout=2.0):
                return None
        except OSError as exc:
            reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            return f"dial tcp {host}:{port}: connect: {reason}"

    return probe
