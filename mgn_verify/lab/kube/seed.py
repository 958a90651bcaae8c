"""The cluster a fresh ``KubeState`` starts with: a small GuildNet installation.

Two nodes of a kubeadm cluster (``kube-system/kubeadm-config``), CoreDNS, kube-proxy, flannel,
MetalLB with an address pool, the Tailscale subnet router, the GuildNet workspace operator,
RethinkDB (LoadBalancer Service, ``Server ready`` in its log), a default StorageClass and the
Workspace/Capability CRDs (guildnet-host-app.md §3, §4.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["SeedTarget", "crd", "seed_cluster"]


class SeedTarget(Protocol):
    """What seeding writes through (``KubeState`` is one; the store imports this module)."""

    def rtype(self, group: str, plural: str) -> ResourceType: ...
    def put(self, rtype: ResourceType, obj: Obj) -> Obj: ...
    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None: ...
    def set_rethinkdb_endpoint(self, host: str, port: int) -> None: ...


_WORKSPACE_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["image"],
            "properties": {
                "image": {"type": "string"},
                "env": {"type": "array", "items": {"type": "object"}},
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["containerPort"],
                        "properties": {
                            "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "name": {"type": "string"},
                            "protocol": {"type": "string"},
                        },
                    },
                },
                "exposure": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["ClusterIP", "LoadBalancer", "Ingress"]},
                        "domain": {"type": "string"},
                        "ingressClass": {"type": "string"},
                        "tlsIssuer": {"type": "string"},
                    },
                },
                "presetsRef": {"type": "string"},
                "notes": {"type": "string"},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string", "enum": ["Pending", "Running", "Failed", "Terminating"]},
                "readyReplicas": {"type": "integer"},
                "serviceDNS": {"type": "string"},
                "serviceIP": {"type": "string"},
                "externalURL": {"type": "string"},
                "proxyTarget": {"type": "string"},
                "lastError": {"type": "string"},
            },
        },
    },
}


def crd(rtype: ResourceType, when: str) -> Obj:
    version: Obj = {
        "name": rtype.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }
    if rtype.plural == "workspaces":
        version["schema"] = {"openAPIV3Schema": _WORKSPACE_SCHEMA}
        version["subresources"] = {"status": {}}
        version["additionalPrinterColumns"] = [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        ]
    names: Obj = {
        "plural": rtype.plural,
        "singular": rtype.singular,
        "kind": rtype.kind,
        "listKind": f"{rtype.kind}List",
    }
    if rtype.short_names:
        names["shortNames"] = list(rtype.short_names)
    name = f"{rtype.plural}.{rtype.group}"
    m = kr.meta(name, created=when)
    m["generation"] = 1
    return {
        "metadata": m,
        "spec": {
            "group": rtype.group,
            "scope": "Namespaced" if rtype.namespaced else "Cluster",
            "names": names,
            "versions": [version],
        },
        "status": {
            "acceptedNames": names,
            "storedVersions": [rtype.version],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": when,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": when,
                },
            ],
        },
    }


def seed_cluster(state: SeedTarget, rethinkdb: tuple[str, int]) -> None:
    when = kr.isotime()
    t = state.rtype
    for ns in (
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "guildnet-system",
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
    state.put(t("", "nodes"), kr.node("lab-control-plane", "10.0.0.10", control_plane=True, when=when))
    state.put(t("", "nodes"), kr.node("lab-worker", "10.0.0.11", control_plane=False, when=when))
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
            state.put(t("apps", "deployments"), kr.deployment(name, ns, labels, containers, when=when))
            pods = [f"{name}-5d8f7c9b6d-{s}" for s in ("x7k2p", "q9m4z")[: 2 if name == "coredns" else 1]]
        elif kind == "ds":
            state.put(
                t("apps", "daemonsets"),
                kr.daemonset(name, ns, labels, containers, desired=2, ready=2, when=when),
            )
            pods = [f"{name}-{s}" for s in ("h5v8n", "w2c6r")]
            owner = {**owner, "kind": "DaemonSet", "name": name, "uid": kr.fake_uid("ds", ns, name)}
        else:
            state.put(
                t("apps", "statefulsets"),
                kr.statefulset(name, ns, labels, containers, replicas=1, ready=1, when=when),
            )
            pods = [f"{name}-0"]
            owner = {**owner, "kind": "StatefulSet", "name": name, "uid": kr.fake_uid("sts", ns, name)}
        for j, pname in enumerate(pods):
            node_name, host_ip = (
                ("lab-control-plane", "10.0.0.10") if j % 2 == 0 else ("lab-worker", "10.0.0.11")
            )
            state.put(
                t("", "pods"),
                kr.pod(
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
        kr.service(
            "kubernetes",
            "default",
            "10.96.0.1",
            [("https", 443)],
            labels={"component": "apiserver", "provider": "kubernetes"},
            selector=None,
            when=when,
        ),
    )
    state.put(
        t("", "services"),
        kr.service(
            "kube-dns",
            "kube-system",
            "10.96.0.10",
            [("dns", 53), ("metrics", 9153)],
            labels={"k8s-app": "kube-dns"},
            selector={"k8s-app": "kube-dns"},
            when=when,
        ),
    )
    state.put(
        t("", "services"),
        kr.service(
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
        state.put(t("apiextensions.k8s.io", "customresourcedefinitions"), crd(t(group, plural), when))
    _seed_kubeadm_and_metallb(state, when)
    state.put(
        t("", "configmaps"),
        {
            "metadata": kr.meta("guildnet-cluster-settings", "guildnet-system", created=when),
            "data": {"workspace_lb_enabled": "false"},
        },
    )
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
