"""RBAC: SelfSubjectAccessReviews for what this layer reads and for what GuildNet does.

``kubernetes.rbac.read`` is the root of every check that lists objects: without it they would
each fail with the same 403. ``kubernetes.rbac`` asks for each verb the Host App and the
workspace operator use (guildnet-host-app.md §2.9, §3.3) and lists the missing ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from mgn_verify import Config, check

from ._kube_common import KubePool, in_parallel

__all__ = ["Access", "guildnet_access", "reads"]


class Access(NamedTuple):
    verb: str
    resource: str
    group: str = ""
    namespace: str = ""  # "" = all namespaces (or a cluster-scoped resource)
    subresource: str = ""

    def label(self) -> str:
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        res = f"{res}.{self.group}" if self.group else res
        return f"{self.verb} {res}" + (f" in {self.namespace}" if self.namespace else "")


def reads() -> list[Access]:
    """What this layer's checks read, cluster-wide."""
    return [
        Access("list", "nodes"), Access("list", "pods"), Access("list", "events"),
        Access("list", "services"), Access("get", "configmaps"), Access("list", "namespaces"),
        Access("list", "deployments", "apps"), Access("list", "daemonsets", "apps"),
        Access("list", "storageclasses", "storage.k8s.io"),
        Access("list", "customresourcedefinitions", "apiextensions.k8s.io"),
    ]


def guildnet_access(config: Config) -> list[Access]:
    """The verbs the Host App (workspaces in ``kubernetes.workspace_namespace``) and the
    operator (``kubernetes.operator_namespace``) need."""
    ws_ns = str(config["kubernetes.workspace_namespace"])
    op_ns = str(config["kubernetes.operator_namespace"])
    wanted = [Access(verb, "workspaces", "guildnet.io", ws_ns)
              for verb in ("get", "list", "watch", "create", "update", "delete")]
    wanted += [
        Access("update", "workspaces", "guildnet.io", ws_ns, "status"),
        Access("get", "pods", "", ws_ns, "log"), Access("list", "pods", "", ws_ns),
        Access("create", "deployments", "apps", ws_ns), Access("create", "services", "", ws_ns),
        Access("create", "events", "", ws_ns), Access("get", "secrets", "", ws_ns),
        Access("get", "configmaps", "", op_ns), Access("create", "configmaps", "", op_ns),
        Access("update", "configmaps", "", op_ns),
        Access("get", "capabilities", "guildnet.io", ws_ns),
    ]
    return wanted


def _review(conn: Any, access: Access) -> bool:
    from mgn_verify.clients import kube

    attributes = {"verb": access.verb, "resource": access.resource, "group": access.group}
    if access.namespace:
        attributes["namespace"] = access.namespace
    if access.subresource:
        attributes["subresource"] = access.subresource
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes}}
    api = kube.api(conn, "AuthorizationV1Api")
    review = kube.request(conn, api.create_self_subject_access_review, body)
    return bool(getattr(review.status, "allowed", False))


def _missing(kube_clusters: KubePool, cluster: str, wanted: list[Access]) -> tuple[Any, list[str]]:
    conn = kube_clusters.get(cluster)
    allowed = in_parallel([lambda a=a: _review(conn, a) for a in wanted])  # type: ignore[misc]
    return conn, [a.label() for a, ok in zip(wanted, allowed, strict=True) if not ok]


@check(
    id="kubernetes.rbac.read",
    gates=["install", "cluster.bootstrap", "cluster.apply"],
    title="Credentials may read the cluster",
    severity="critical",
    requires="kubernetes.api.readyz[{cluster}]",
    remediation="bind the kubeconfig user to a role that may list these resources, e.g. "
    "kubectl create clusterrolebinding mgn-verify --clusterrole=view --user=<user> (nodes, storageclasses "
    "and CRDs need a ClusterRole)",
)
def check_rbac_read(cluster: str, kube_clusters: KubePool) -> dict[str, Any]:
    """SelfSubjectAccessReview allows every list/get this layer makes."""
    conn, missing = _missing(kube_clusters, cluster, reads())
    assert not missing, (f"kubeconfig user {conn.user!r} may not: {', '.join(missing)}")
    return {"message": f"kubeconfig user {conn.user!r} may read what the checks need ({len(reads())} reviews)"}


@check(
    id="kubernetes.rbac",
    gates=["install"],
    title="Credentials allow what GuildNet does",
    severity="critical",
    requires="kubernetes.rbac.read[{cluster}]",
    remediation="grant the missing verbs to the kubeconfig user GuildNet uses (a ClusterRole with "
    "guildnet.io workspaces, pods/log, deployments, services, configmaps; bound with kubectl create "
    "clusterrolebinding), or use the cluster's admin kubeconfig",
)
def check_rbac(cluster: str, kube_clusters: KubePool, config: Config) -> dict[str, Any]:
    """SelfSubjectAccessReview allows each verb the Host App and the operator need."""
    wanted = guildnet_access(config)
    conn, missing = _missing(kube_clusters, cluster, wanted)
    assert not missing, (f"kubeconfig user {conn.user!r} lacks {len(missing)} of {len(wanted)} permissions "
                         f"GuildNet needs: {', '.join(missing)}")
    return {"message": f"all {len(wanted)} permissions GuildNet needs are granted to {conn.user!r}"}
