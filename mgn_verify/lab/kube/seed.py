"""The cluster a fresh ``KubeState`` starts with: a small GuildNet installation.

Two nodes of a kubeadm cluster (``kube-system/kubeadm-config``), CoreDNS, kube-proxy, flannel,
MetalLB with an address pool, the Tailscale subnet router, the GuildNet workspace operator,
RethinkDB (LoadBalancer Service, ``Server ready`` in its log), a default StorageClass and the
Workspace/Capability CRDs (guildnet-host-app.md §3, §4.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from mgn_verify.lab.kube import builders as kb
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.crds import crd
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["SeedTarget", "crd", "seed_cluster"]


class SeedTarget(Protocol):
    """What seeding writes through (``KubeState`` is one; the store imports this module)."""

    def rtype(self, group: str, plural: str) -> ResourceType: ...
    def put(self, rtype: ResourceType, obj: Obj) -> Obj: ...
    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None: ...
    def set_rethinkdb_endpoint(self, host: str, port: int) -> None: ...


def seed_cluster(state: SeedTarget, rethinkdb: tuple[str, int], *, guildnet: bool = True) -> None:
    """The cluster; ``guildnet=False``: the same cluster before ``mgn install`` (no CRDs,
    operator, RethinkDB or ``guildnet-system``)."""
    when = kr.isotime()
    t = state.rtype
    for ns in (
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        *(("guildnet-system",) if guildnet else ()),
        "metallb-system",
        "kube-flannel",
    ):
        state.put(
            t("", "namespaces"),
            {
                "metadata": kr.meta(ns, labels={"kubernetes.io/metadata.name": ns}, created=when),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
        state.put(
            t("", "configmaps"),
            {
                "metadata": kr.meta("kube-root-ca.crt", ns, created=when),
                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"},
            },
        )
        state.put(t("", "serviceaccounts"), {"metadata": kr.meta("default", ns, created=when)})
    _seed_rbac(state, when, guildnet=guildnet)
    state.put(t("", "nodes"), kb.node("lab-control-plane", "10.0.0.10", control_plane=True, when=when))
    state.put(t("", "nodes"), kb.node("lab-worker", "10.0.0.11", control_plane=False, when=when))
    workloads: list[tuple[str, str, dict[str, str], str, str, str]] = [
        (
            "kube-system",
            "coredns",
            {"k8s-app": "kube-dns"},
            "coredns",
            "registry.k8s.io/coredns/coredns:v1.11.1",
            "deploy",
        ),
        (
            "guildnet-system",
            "workspace-operator",
            {"app": "workspace-operator"},
            "operator",
            "guildnet/hostapp:local",
            "deploy",
        ),
        (
            "metallb-system",
            "controller",
            {"app": "metallb", "component": "controller"},
            "controller",
            "quay.io/metallb/controller:v0.14.5",
            "deploy",
        ),
        (
            "kube-system",
            "kube-proxy",
            {"k8s-app": "kube-proxy"},
            "kube-proxy",
            "registry.k8s.io/kube-proxy:v1.30.2",
            "ds",
        ),
        (
            "kube-system",
            "tailscale-subnet-router",
            {"app": "tailscale-subnet-router"},
            "tailscale",
            "tailscale/tailscale:stable",
            "ds",
        ),
        (
            "metallb-system",
            "speaker",
            {"app": "metallb", "component": "speaker"},
            "speaker",
            "quay.io/metallb/speaker:v0.14.5",
            "ds",
        ),
        ("default", "rethinkdb", {"app": "rethinkdb"}, "rethinkdb", "rethinkdb:2.4", "sts"),
        (
            "kube-flannel",
            "kube-flannel-ds",
            {"app": "flannel", "k8s-app": "flannel"},
            "kube-flannel",
            "docker.io/flannel/flannel:v0.25.1",
            "ds",
        ),
    ]
    if not guildnet:
        workloads = [w for w in workloads if w[1] not in ("workspace-operator", "rethinkdb")]
    for i, (ns, name, labels, cname, image, kind) in enumerate(workloads):
        containers = [(cname, image)]
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": f"{name}-5d8f7c9b6d",
            "uid": kr.fake_uid("rs", ns, name),
            "controller": True,
        }
        if kind == "deploy":
            state.put(t("apps", "deployments"), kb.deployment(name, ns, labels, containers, when=when))
            pods = [f"{name}-5d8f7c9b6d-{s}" for s in ("x7k2p", "q9m4z")[: 2 if name == "coredns" else 1]]
        elif kind == "ds":
            state.put(
                t("apps", "daemonsets"),
                kb.daemonset(name, ns, labels, containers, desired=2, ready=2, when=when),
            )
            pods = [f"{name}-{s}" for s in ("h5v8n", "w2c6r")]
            owner = {**owner, "kind": "DaemonSet", "name": name, "uid": kr.fake_uid("ds", ns, name)}
        else:
            state.put(
                t("apps", "statefulsets"),
                kb.statefulset(name, ns, labels, containers, replicas=1, ready=1, when=when),
            )
            pods = [f"{name}-0"]
            owner = {**owner, "kind": "StatefulSet", "name": name, "uid": kr.fake_uid("sts", ns, name)}
        for j, pname in enumerate(pods):
            node_name, host_ip = (
                ("lab-control-plane", "10.0.0.10") if j % 2 == 0 else ("lab-worker", "10.0.0.11")
            )
            state.put(
                t("", "pods"),
                kb.pod(
                    pname,
                    ns,
                    labels,
                    containers,
                    node_name=node_name,
                    pod_ip=f"10.244.{j % 2}.{i * 2 + j + 2}",
                    host_ip=host_ip,
                    running=True,
                    when=when,
                    owner=owner,
                ),
            )
    if guildnet:
        _seed_rethinkdb(state, rethinkdb, when)
    services: list[tuple[str, str, str, list[tuple[str | None, int]], dict[str, str], dict[str, str] | None]] = [
        ("kubernetes", "default", "10.96.0.1", [("https", 443)], {"component": "apiserver",
                                                                 "provider": "kubernetes"}, None),
        ("kube-dns", "kube-system", "10.96.0.10", [("dns", 53), ("metrics", 9153)], {"k8s-app": "kube-dns"},
         {"k8s-app": "kube-dns"}),
    ]
    for name, ns, ip, ports, labels, selector in services:
        state.put(t("", "services"), kb.service(name, ns, ip, ports, labels=labels, selector=selector, when=when))
    state.put(
        t("storage.k8s.io", "storageclasses"),
        {
            "metadata": kr.meta(
                "standard",
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
                created=when,
            ),
            "provisioner": "rancher.io/local-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": True,
            "parameters": {},
        },
    )
    for group, plural in kr.CRD_SPECS:
        if guildnet or group != "guildnet.io":
            state.put(t("apiextensions.k8s.io", "customresourcedefinitions"), crd(t(group, plural), when))
    _seed_kubeadm_and_metallb(state, when)
    if guildnet:
        state.put(
            t("", "configmaps"),
            {
                "metadata": kr.meta("guildnet-cluster-settings", "guildnet-system", created=when),
                "data": {"workspace_lb_enabled": "false"},
            },
        )


def _seed_rethinkdb(state: SeedTarget, rethinkdb: tuple[str, int], when: str) -> None:
    """RethinkDB as guildnet-host-app.md §4.1 deploys it (the StatefulSet is with the workloads)."""
    t = state.rtype
    state.set_pod_log(
        "default",
        "rethinkdb-0",
        [
            "Running rethinkdb 2.4.4~0bookworm (GCC 12.2.0)...",
            "Listening for client driver connections on port 28015",
            'Server ready, "rethinkdb_0" 3f6c0b5e-8f5e-4a7b-9c1d-2a4b6c8d0e1f',
        ],
    )
    state.put(
        t("", "services"),
        kb.service(
            "rethinkdb",
            "default",
            "10.96.0.20",
            [("client", 28015)],
            labels={"app": "rethinkdb"},
            selector={"app": "rethinkdb"},
            lb_ip=rethinkdb[0],
            when=when,
        ),
    )
    state.set_rethinkdb_endpoint(*rethinkdb)
    state.put(
        t("", "secrets"),
        {
            "metadata": kr.meta("rethinkdb-admin", "default", created=when),
            "type": "Opaque",
            "data": {"password": "bGFiLXBhc3N3b3Jk"},
        },
    )
    state.put(
        t("", "events"),
        {
            "metadata": kr.meta("rethinkdb-0.17d3a1b2c4e5f6a7", "default", created=when),
            "involvedObject": {
                "kind": "Pod",
                "namespace": "default",
                "name": "rethinkdb-0",
                "apiVersion": "v1",
            },
            "reason": "Started",
            "message": "Started container rethinkdb",
            "type": "Normal",
            "count": 1,
            "source": {"component": "kubelet", "host": "lab-control-plane"},
            "firstTimestamp": when,
            "lastTimestamp": when,
            "reportingComponent": "kubelet",
            "reportingInstance": "lab-control-plane",
        },
    )


_RBAC = "rbac.authorization.k8s.io"
_OPERATOR_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services", "events"], "verbs": ["*"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["*"]},
    {"apiGroups": ["guildnet.io"], "resources": ["workspaces", "workspaces/status"], "verbs": ["*"]},
]


def _seed_rbac(state: SeedTarget, when: str, *, guildnet: bool) -> None:
    """The default ClusterRoles kube-apiserver bootstraps, and (installed) the operator's RBAC."""
    t = state.rtype
    bootstrap = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
    read = [{"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]
    for name, rules in (("cluster-admin", everything), ("admin", read), ("edit", read), ("view", read)):
        state.put(t(_RBAC, "clusterroles"), {"metadata": kr.meta(name, labels=bootstrap, created=when),
                                             "rules": rules})
    bindings = [("cluster-admin", "cluster-admin", {"kind": "Group", "apiGroup": _RBAC, "name": "system:masters"})]
    if guildnet:
        state.put(t("", "serviceaccounts"), {"metadata": kr.meta("workspace-operator", "guildnet-system",
                                                                 created=when)})
        state.put(t(_RBAC, "clusterroles"), {"metadata": kr.meta("workspace-operator", created=when),
                                             "rules": _OPERATOR_RULES})
        bindings.append(("workspace-operator", "workspace-operator", {
            "kind": "ServiceAccount", "name": "workspace-operator", "namespace": "guildnet-system"}))
    for name, role, subject in bindings:
        state.put(t(_RBAC, "clusterrolebindings"), {
            "metadata": kr.meta(name, labels=bootstrap if name == "cluster-admin" else None, created=when),
            "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": role}, "subjects": [subject]})


_CLUSTER_CONFIGURATION = """apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
clusterName: kubernetes
controlPlaneEndpoint: 10.0.0.10:6443
kubernetesVersion: v1.30.2
networking:
  dnsDomain: cluster.local
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
"""


def _seed_kubeadm_and_metallb(state: SeedTarget, when: str) -> None:
    """kubeadm's record of the cluster, and MetalLB's address pool with its L2 advertisement."""
    t = state.rtype
    state.put(
        t("", "configmaps"),
        {
            "metadata": kr.meta("kubeadm-config", "kube-system", created=when),
            "data": {"ClusterConfiguration": _CLUSTER_CONFIGURATION},
        },
    )
    pool = kr.meta("default-pool", "metallb-system", created=when)
    pool["generation"] = 1
    state.put(
        t("metallb.io", "ipaddresspools"),
        {"metadata": pool, "spec": {"addresses": ["10.0.0.240-10.0.0.250"], "autoAssign": True,
                                    "avoidBuggyIPs": False}},
    )
    advert = kr.meta("default-l2", "metallb-system", created=when)
    advert["generation"] = 1
    state.put(t("metallb.io", "l2advertisements"), {"metadata": advert, "spec": {"ipAddressPools": ["default-pool"]}})
