"""Nodes: Ready, schedulable, no pressure; allocatable CPU and memory; the distribution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mgn_verify import Config, check, warn

from ._kube_common import KubePool, gib, list_json, quantity, read_json

__all__ = ["detect_distribution"]

_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
_READ = "kubernetes.rbac.read[{cluster}]"


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def node_problems(node: dict[str, Any]) -> list[str]:
    """What is wrong with one node, each naming the condition and the kubelet's reason."""
    problems = []
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") != "True":
        why = ready.get("reason") or "no Ready condition"
        message = str(ready.get("message") or "")[:160]
        problems.append(f"Ready={ready.get('status', 'missing')} ({why}{': ' + message if message else ''})")
    for ctype in _PRESSURE:
        cond = conditions.get(ctype) or {}
        if cond.get("status") == "True":
            problems.append(f"{ctype} ({cond.get('reason') or 'True'})")
    if (node.get("spec") or {}).get("unschedulable"):
        problems.append("cordoned (spec.unschedulable)")
    return problems


@check(
    id="kubernetes.nodes.ready",
    gates=["install", "workspace.create", "federation.deploy"],
    title="Nodes Ready, schedulable, without pressure",
    severity="critical",
    requires=_READ,
    remediation="kubectl describe node <node>; on the node: systemctl status kubelet, journalctl -u kubelet; "
    "a NetworkPluginNotReady reason means the CNI is not running; kubectl uncordon <node> for a cordoned one",
)
def check_nodes_ready(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """At least ``kubernetes.min_nodes`` nodes; each Ready, not cordoned, no Memory/Disk/PID
    pressure or NetworkUnavailable."""
    nodes = list_json(kube_clusters.get(cluster), "CoreV1Api", "list_node")
    bad = {_name(n): p for n in nodes if (p := node_problems(n))}
    minimum = int(config["kubernetes.min_nodes"])
    assert len(nodes) >= minimum, f"{len(nodes)} node(s) registered, kubernetes.min_nodes is {minimum}"
    assert not bad, "; ".join(f"node {name}: {', '.join(p)}" for name, p in sorted(bad.items()))
    return {"message": f"{len(nodes)} node(s) Ready and schedulable: {', '.join(sorted(map(_name, nodes)))}",
            "nodes": len(nodes)}


def _schedulable(node: dict[str, Any]) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return not (node.get("spec") or {}).get("unschedulable") and not any(
        t.get("effect") == "NoSchedule" for t in taints)


@check(
    id="kubernetes.nodes.resources",
    title="Allocatable CPU and memory suffice",
    severity="warning",
    requires="kubernetes.nodes.ready[{cluster}]",  # capacity of nodes that are not Ready means little
    remediation="add or enlarge worker nodes, or lower kubernetes.min_node_cpu / min_node_memory_gib / "
    "min_cluster_cpu / min_cluster_memory_gib to what your workspaces need",
)
def check_nodes_resources(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Every schedulable node has ``kubernetes.min_node_cpu`` cores and ``min_node_memory_gib``
    allocatable; together they have ``min_cluster_cpu`` and ``min_cluster_memory_gib``."""
    nodes = [n for n in list_json(kube_clusters.get(cluster), "CoreV1Api", "list_node") if _schedulable(n)]
    assert nodes, "no schedulable node (all are cordoned or tainted NoSchedule): workspaces cannot run"
    node_cpu = Decimal(str(config["kubernetes.min_node_cpu"]))
    node_mem = float(config["kubernetes.min_node_memory_gib"])
    total_cpu, total_mem, short = Decimal(0), 0.0, []
    for node in nodes:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        cpu, mem = quantity(alloc.get("cpu", "0")), gib(quantity(alloc.get("memory", "0")))
        total_cpu, total_mem = total_cpu + cpu, total_mem + mem
        if cpu < node_cpu or mem < node_mem:
            short.append(f"node {_name(node)}: {cpu:g} CPU, {mem:.1f} GiB allocatable "
                         f"(minimum {node_cpu:g} CPU, {node_mem:g} GiB)")
    want_cpu = Decimal(str(config["kubernetes.min_cluster_cpu"]))
    want_mem = float(config["kubernetes.min_cluster_memory_gib"])
    if total_cpu < want_cpu or total_mem < want_mem:
        short.append(f"schedulable nodes together: {total_cpu:g} CPU, {total_mem:.1f} GiB "
                     f"(minimum {want_cpu:g} CPU, {want_mem:g} GiB)")
    details = {"schedulable_nodes": len(nodes), "cpu": float(total_cpu), "memory_gib": round(total_mem, 1)}
    assert not short, "; ".join(short)
    return {"message": f"{len(nodes)} schedulable node(s): {total_cpu:g} CPU, {total_mem:.1f} GiB allocatable",
            **details}


_VERSION_MARKERS = (("+k3s", "k3s"), ("+rke2", "rke2"), ("-eks-", "eks"), ("-gke.", "gke"))
_PROVIDERS = (("aws://", "eks"), ("gce://", "gke"), ("azure://", "aks"), ("kind://", "kind"), ("k3s://", "k3s"))
_LABELS = (("microk8s.io/cluster", "microk8s"), ("kubernetes.azure.com/cluster", "aks"),
           ("eks.amazonaws.com/nodegroup", "eks"), ("cloud.google.com/gke-nodepool", "gke"))


def detect_distribution(git_version: str, nodes: list[dict[str, Any]], kubeadm_config: bool) -> tuple[str, str]:
    """(distribution, the evidence): from the server version string, node providerIDs, labels
    and OS images, and kubeadm's ``kube-system/kubeadm-config`` ConfigMap."""
    for marker, name in _VERSION_MARKERS:
        if marker in git_version:
            return name, f"server version {git_version}"
    for node in nodes:
        provider = str((node.get("spec") or {}).get("providerID") or "")
        labels = (node.get("metadata") or {}).get("labels") or {}
        os_image = str(((node.get("status") or {}).get("nodeInfo") or {}).get("osImage") or "")
        for prefix, name in _PROVIDERS:
            if provider.startswith(prefix):
                return name, f"node {_name(node)} providerID {provider.split('/')[0]}//…"
        for label, name in _LABELS:
            if label in labels:
                return name, f"node {_name(node)} label {label}"
        if os_image.startswith("Talos"):
            return "talos", f"node {_name(node)} runs {os_image}"
    if kubeadm_config:
        return "kubeadm", "ConfigMap kube-system/kubeadm-config"
    return "unknown", "no known marker"


@check(
    id="kubernetes.distribution",
    title="Kubernetes distribution detected",
    severity="warning",
    requires=_READ,
    remediation="GuildNet is tested on kubernetes.distributions; add yours to that list if it works for you",
)
def check_distribution(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """Names the distribution (kubeadm, k3s, rke2, Talos, microk8s, kind, EKS, GKE, AKS); one
    outside ``kubernetes.distributions`` is a warning."""
    from mgn_verify._exceptions import ApiError
    from mgn_verify.clients import kube

    conn = kube_clusters.get(cluster)
    git_version = str(kube.server_version(conn).get("gitVersion") or "")
    nodes = list_json(conn, "CoreV1Api", "list_node")
    try:
        read_json(conn, "CoreV1Api", "read_namespaced_config_map", "kubeadm-config", "kube-system")
        kubeadm_config = True
    except ApiError as exc:
        if exc.status != 404:
            raise
        kubeadm_config = False
    name, evidence = detect_distribution(git_version, nodes, kubeadm_config)
    runtime = {str(((n.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion")) for n in nodes}
    summary = f"{name} ({evidence}); Kubernetes {git_version}, {len(nodes)} node(s), {', '.join(sorted(runtime))}"
    supported = [str(d) for d in config["kubernetes.distributions"]]
    if name == "unknown":
        return {"message": f"distribution not recognised; Kubernetes {git_version}", "distribution": name}
    if name not in supported:
        warn(f"{summary}: not in kubernetes.distributions ({', '.join(supported)})")
    return {"message": summary, "distribution": name}
