"""The ``kubernetes`` layer: is each GuildNet cluster's API healthy, and does it have what
GuildNet runs on?

Every check is per cluster (``kubernetes.nodes.ready[prod-east]``), written once in a private
module and registered for each cluster by ``mgn_register_checks``. The chain of requirements
makes one broken thing one result: ``kubernetes.config`` → ``kubernetes.api.reachable`` →
``kubernetes.api.livez`` → ``kubernetes.api.readyz`` → ``kubernetes.rbac.read`` → everything
that lists objects. The ``kubernetes`` client is imported only when a check runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from mgn_verify import Config, Registry, RunPlan, fixture, hookimpl
from mgn_verify.config import SettingsRegistry

from . import _kube_access, _kube_api, _kube_nodes, _kube_platform, _kube_pods
from ._clusters import local_cluster_targets, register_per_cluster
from ._common import module_checks
from ._kube_common import KubePool

#: Every @check of the helper modules, collected (no hand-kept list to forget a new one in).
CLUSTER_CHECKS = module_checks(_kube_api, _kube_access, _kube_nodes, _kube_platform, _kube_pods)

_NETWORK_DAEMONSETS = ["kube-proxy", "kube-flannel", "calico-node", "cilium", "canal", "weave-net",
                       "kube-router", "antrea-agent"]
_DISTRIBUTIONS = ["kubeadm", "k3s", "rke2", "talos", "microk8s", "kind", "eks", "gke", "aks"]


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("kubernetes.timeout", 5.0, help="seconds per Kubernetes API request")
    add("kubernetes.latency_warn", 1.0, help="warn when the median API request takes longer (seconds)")
    add("kubernetes.latency_samples", 3, help="requests to /version timed by kubernetes.api.latency")
    add("kubernetes.min_version", "1.28", help="oldest supported Kubernetes minor version")
    add("kubernetes.max_version", "1.33", help="newest supported Kubernetes minor version")
    add("kubernetes.client_version", None, kind="str",
        help="client version for the skew check, e.g. 1.30 (default: `kubectl version --client`)")
    add("kubernetes.kubectl", "kubectl", help="kubectl whose version the skew check compares with the server")
    add("kubernetes.distributions", list(_DISTRIBUTIONS),
        help="distributions GuildNet supports; another detected one is a warning")
    add("kubernetes.min_nodes", 1, help="nodes that must be registered")
    add("kubernetes.min_node_cpu", 2.0, help="allocatable CPUs each schedulable node needs")
    add("kubernetes.min_node_memory_gib", 2.0, help="allocatable memory (GiB) each schedulable node needs")
    add("kubernetes.min_cluster_cpu", 4.0, help="allocatable CPUs all schedulable nodes need together")
    add("kubernetes.min_cluster_memory_gib", 8.0, help="allocatable memory (GiB) all schedulable nodes need together")
    add("kubernetes.dns_selector", "k8s-app=kube-dns", help="label selector of the cluster DNS Deployment "
        "and Service in kube-system")
    add("kubernetes.network_daemonsets", list(_NETWORK_DAEMONSETS),
        help="DaemonSets of kube-proxy and CNIs (NAME matches NAME and NAME-*) that must be ready where present")
    add("kubernetes.crds", ["workspaces.guildnet.io", "capabilities.guildnet.io"],
        help="CustomResourceDefinitions GuildNet needs")
    add("kubernetes.crd_version", "v1alpha1", help="CRD version the Host App speaks")
    add("kubernetes.operator_namespace", "guildnet-system", help="namespace of the workspace operator")
    add("kubernetes.operator_deployment", "workspace-operator", help="Deployment of the workspace operator")
    add("kubernetes.workspace_namespace", "default",
        help="namespace where the Host App manages Workspaces (RBAC checked there)")
    add("kubernetes.platform_namespaces", ["kube-system", "guildnet-system", "metallb-system"],
        help="namespaces whose pods and Warning events are checked")
    add("kubernetes.pending_grace_s", 300.0, help="seconds a platform pod may stay Pending")
    add("kubernetes.events_window_s", 3600.0, help="how far back Warning events are reported (seconds)")


@fixture
def kube_clusters(config: Config, plan: RunPlan) -> Iterator[KubePool]:
    """One Kubernetes connection per cluster for the run, closed at the end."""
    pool = KubePool(config, local_cluster_targets(config, plan.selection))
    try:
        yield pool
    finally:
        pool.close()


@hookimpl
def mgn_register_checks(registry: Registry, config: Config, selection: list[str]) -> None:
    register_per_cluster(registry, CLUSTER_CHECKS, local_cluster_targets(config, selection))
