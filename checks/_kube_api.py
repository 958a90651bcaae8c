"""The API server itself: kubeconfig, reachability, ``/livez``, ``/readyz``, latency, versions.

``kubernetes.config`` and ``kubernetes.api.reachable`` are the layer's roots: the first turns a
missing or unusable kubeconfig into one result (``skip`` in a run of ``all`` when nothing is
configured, ``fail`` otherwise), the second a server that does not answer or rejects the
credentials. Every other check of the cluster requires them.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from typing import Any

from mgn_verify import Config, check, warn
from mgn_verify._exceptions import ClientError, NotConfiguredError

from ._clusters import not_found
from ._kube_common import LAYER, NOT_CONFIGURED_HINT, KubePool, health, reachable

__all__ = ["minor_of"]

_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def minor_of(text: object) -> tuple[int, int] | None:
    """``(1, 30)`` from ``v1.30.2``, ``1.30``, ``v1.29.3+k3s1`` or ``v1.28.5-eks-5e0fdde``."""
    match = _VERSION.match(str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@check(
    id="kubernetes.config",
    gates=["install", "cluster.bootstrap", "cluster.apply"], waivable=False,
    title="kubeconfig is usable",
    severity="critical",
    remediation="set kubernetes.kubeconfig (or KUBECONFIG) to a kubeconfig for the cluster, "
    "kubernetes.context to one of its contexts; renew expired credentials (kubeadm certs renew admin.conf, "
    "or fetch a fresh kubeconfig from the distribution)",
)
def check_config(cluster: str, kube_clusters: KubePool, plan: Any) -> dict[str, Any]:
    """The kubeconfig is found, parses, names an existing context and usable credentials."""
    try:
        conn = kube_clusters.get(cluster)
    except NotConfiguredError as exc:
        if kube_clusters.configured(cluster):  # named but absent: a mistake, never a skip
            raise AssertionError(str(exc)) from None
        not_found(plan, LAYER, str(exc), hint=NOT_CONFIGURED_HINT)
    except ClientError as exc:
        raise AssertionError(str(exc)) from None
    return {"message": f"using {conn.describe()}, server {conn.server}", "kubeconfig": str(conn.path),
            "source": conn.source, "context": conn.context, "user": conn.user, "server": conn.server}


@check(
    id="kubernetes.api.reachable",
    gates=["install", "cluster.bootstrap", "cluster.apply"], waivable=False,
    title="API server answers",
    severity="critical",
    requires="kubernetes.config[{cluster}]",
    remediation="check the server URL of the kubeconfig context, that kube-apiserver runs "
    "(kubectl get --raw /version), the CA in the kubeconfig, and renew rejected credentials",
)
def check_reachable(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """``GET /version`` answers over verified TLS and accepts the credentials."""
    from mgn_verify.clients import kube

    conn = kube_clusters.get(cluster)
    started = time.perf_counter()
    try:
        info = kube.server_version(conn)
    except ClientError as exc:
        raise AssertionError(str(exc)) from None
    took = time.perf_counter() - started
    return {"message": f"{conn.server} answers: Kubernetes {info.get('gitVersion')} ({took:.2f} s)",
            "server": conn.server, "git_version": info.get("gitVersion"), "platform": info.get("platform")}


def _failing(text: str) -> list[str]:
    return [line.split(" ", 1)[0][3:] for line in text.splitlines() if line.startswith("[-]")]


def _health_check(kube_clusters: KubePool, cluster: str, endpoint: str) -> dict[str, Any]:
    conn = kube_clusters.get(cluster)
    status, text = health(conn, endpoint, [("verbose", "true")])
    lines = [line for line in text.splitlines() if line.startswith(("[+]", "[-]"))]
    if status == 200:
        return {"message": f"{endpoint}: all {len(lines)} checks ok", "checks": len(lines)}
    failing = _failing(text)
    if failing:
        detail = ", ".join(f"[-]{name} failed" for name in failing)
        raise AssertionError(f"{endpoint} answered {status}: {detail}")
    raise AssertionError(f"{endpoint} answered {status}: {text.strip()[:200]}")


@check(
    id="kubernetes.api.livez",
    gates=["install"],
    title="API server is live (/livez)",
    severity="critical",
    requires=reachable,
    remediation="kubectl get --raw '/livez?verbose' names the failing check; for [-]etcd check the etcd "
    "members (etcdctl endpoint health) and the apiserver's --etcd-servers",
)
def check_livez(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """``/livez?verbose`` passes; a failure names each failing component."""
    return _health_check(kube_clusters, cluster, "/livez")


@check(
    id="kubernetes.api.readyz",
    gates=["install", "cluster.bootstrap", "cluster.apply", "workspace.create", "federation.deploy"],
    title="API server is ready (/readyz)",
    severity="critical",
    requires="kubernetes.api.livez[{cluster}]",
    remediation="kubectl get --raw '/readyz?verbose' names the failing check; wait for informer-sync after a "
    "restart, check etcd (etcd-readiness) and whether the apiserver is shutting down",
)
def check_readyz(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """``/readyz?verbose`` passes; a failure names each failing component."""
    return _health_check(kube_clusters, cluster, "/readyz")


@check(
    id="kubernetes.api.latency",
    title="API server answers quickly",
    severity="warning",
    requires=reachable,
    remediation="a slow API server: check its load (kubectl top pods -n kube-system), etcd disk latency "
    "(system.disk.fsync on the control plane) and the network path; raise kubernetes.latency_warn if expected",
)
def check_latency(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """The median of ``kubernetes.latency_samples`` requests to ``/version`` is under
    ``kubernetes.latency_warn`` seconds; a sample over the limit ends the measurement."""
    from mgn_verify.clients import kube

    conn = kube_clusters.get(cluster)
    limit = float(config["kubernetes.latency_warn"])
    samples: list[float] = []
    for _ in range(max(1, int(config["kubernetes.latency_samples"]))):
        started = time.perf_counter()
        try:
            kube.server_version(conn)
        except ClientError as exc:
            raise AssertionError(f"no answer within kubernetes.timeout={conn.timeout:g} s: {exc}") from None
        samples.append(time.perf_counter() - started)
        if samples[-1] > limit:
            break
    median = statistics.median(samples)
    details = {"median_s": round(median, 3), "max_s": round(max(samples), 3), "samples": len(samples)}
    if median > limit:
        warn(f"API requests take {median:.2f} s (median of {len(samples)}), above "
             f"kubernetes.latency_warn={limit:g} s")
    return {"message": f"median {median * 1000:.0f} ms over {len(samples)} requests", **details}


def _range(config: Config) -> tuple[tuple[int, int], tuple[int, int]]:
    low, high = minor_of(config["kubernetes.min_version"]), minor_of(config["kubernetes.max_version"])
    if low is None or high is None:
        raise ValueError("kubernetes.min_version and kubernetes.max_version must look like 1.30")
    return low, high


@check(
    id="kubernetes.version",
    gates=["install"],
    title="Kubernetes version is supported",
    severity="critical",
    requires=reachable,
    remediation="upgrade the cluster into the supported range (kubeadm upgrade plan; or your distribution's "
    "upgrade), or adjust kubernetes.min_version / kubernetes.max_version",
)
def check_version(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """The server's minor version lies in [``kubernetes.min_version``, ``kubernetes.max_version``]."""
    from mgn_verify.clients import kube

    info = kube.server_version(kube_clusters.get(cluster))
    git_version = str(info.get("gitVersion") or "")
    server = minor_of(git_version)
    assert server is not None, f"the server reports an unparsable version {git_version!r}"
    low, high = _range(config)
    span = f"{low[0]}.{low[1]}-{high[0]}.{high[1]}"
    assert low <= server <= high, f"Kubernetes {git_version} is outside the supported range {span}"
    return {"message": f"Kubernetes {git_version} (supported: {span})", "git_version": git_version}


def _client_minor(config: Config) -> tuple[tuple[int, int] | None, str]:
    """The client version to compare and where it came from; (None, why) when there is none."""
    configured = config["kubernetes.client_version"]
    if configured:
        return minor_of(configured), "kubernetes.client_version"
    kubectl = shutil.which(str(config["kubernetes.kubectl"] or "kubectl"))
    if kubectl is None:
        return None, "no kubectl on PATH"
    try:
        out = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
        version = json.loads(out)["clientVersion"]["gitVersion"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None, f"{kubectl} version --client gave no version"
    return minor_of(version), f"kubectl {version}"


def _kubelet_problems(nodes: list[dict[str, Any]], server: tuple[int, int]) -> list[str]:
    problems = []
    for node in nodes:
        version = str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or "")
        kubelet = minor_of(version)
        name = (node.get("metadata") or {}).get("name")
        if kubelet is None:
            continue
        if kubelet > server:
            problems.append(f"node {name}: kubelet {version} is newer than the API server")
        elif server[0] == kubelet[0] and server[1] - kubelet[1] > 3:
            problems.append(f"node {name}: kubelet {version} is more than 3 minor versions older")
    return problems


@check(
    id="kubernetes.version.skew",
    title="Client and kubelet versions within the skew policy",
    severity="warning",
    requires="kubernetes.rbac.read[{cluster}]",
    remediation="install a kubectl within one minor version of the server "
    "(https://dl.k8s.io/release/v<server>/bin/linux/amd64/kubectl) or set kubernetes.client_version; "
    "upgrade kubelets that are too old, never run a kubelet newer than the API server",
)
def check_skew(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """kubectl (or ``kubernetes.client_version``) is within ±1 minor of the server; every
    kubelet is not newer than the server and at most 3 minors older."""
    from mgn_verify.clients import kube

    from ._kube_common import list_json

    conn = kube_clusters.get(cluster)
    git_version = str(kube.server_version(conn).get("gitVersion") or "")
    server = minor_of(git_version)
    assert server is not None, f"the server reports an unparsable version {git_version!r}"
    problems = _kubelet_problems(list_json(conn, "CoreV1Api", "list_node"), server)
    client, source = _client_minor(config)
    if client is not None and (client[0] != server[0] or abs(client[1] - server[1]) > 1):
        problems.append(f"client {source} is {client[0]}.{client[1]}, server {git_version}: "
                        "outside kubectl's ±1 minor skew policy")
    if problems:
        warn("; ".join(problems))
    said = f"{source} ({client[0]}.{client[1]})" if client else source
    return {"message": f"server {git_version}; client: {said}; kubelets within policy"}
