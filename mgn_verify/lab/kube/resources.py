"""The resource types the Kubernetes simulator serves, and the metadata every object carries.

The object builders (nodes, workloads, pods, services) are in
:mod:`~mgn_verify.lab.kube.builders`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["CRD_SPECS", "RESOURCE_TYPES", "Obj", "ResourceType", "fake_uid", "find_type", "isotime", "meta",
           "prune_workspace_spec"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" is the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
    short_names: tuple[str, ...] = ()
    custom: bool = False  # served only while its CustomResourceDefinition exists
    status_subresource: bool = False  # a custom resource whose CRD declares subresources.status

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as used in Status messages (bare plural for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _rt(group: str, version: str, plural: str, kind: str, namespaced: bool, *shorts: str,
        custom: bool = False) -> ResourceType:
    singular = kind.lower()
    return ResourceType(group, version, plural, singular, kind, namespaced, short_names=shorts, custom=custom)


_RBAC = "rbac.authorization.k8s.io"


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", False, "ns"),
    _rt("", "v1", "nodes", "Node", False, "no"),
    _rt("", "v1", "pods", "Pod", True, "po"),
    _rt("", "v1", "services", "Service", True, "svc"),
    _rt("", "v1", "events", "Event", True, "ev"),
    _rt("", "v1", "secrets", "Secret", True),
    _rt("", "v1", "configmaps", "ConfigMap", True, "cm"),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, "sa"),
    _rt("apps", "v1", "deployments", "Deployment", True, "deploy"),
    _rt("apps", "v1", "replicasets", "ReplicaSet", True, "rs"),
    _rt("apps", "v1", "daemonsets", "DaemonSet", True, "ds"),
    _rt("apps", "v1", "statefulsets", "StatefulSet", True, "sts"),
    _rt("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, "sc"),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, "crd"),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
    _rt(_RBAC, "v1", "clusterroles", "ClusterRole", False),
    _rt(_RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt(_RBAC, "v1", "roles", "Role", True),
    _rt(_RBAC, "v1", "rolebindings", "RoleBinding", True),
    # Custom resources: served while their CRD exists (seeded, or created by an install).
    _rt("guildnet.io", "v1alpha1", "workspaces", "Workspace", True, "ws", custom=True),
    _rt("guildnet.io", "v1alpha1", "capabilities", "Capability", True, "cap", custom=True),
    _rt("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool", True, custom=True),
    _rt("metallb.io", "v1beta1", "l2advertisements", "L2Advertisement", True, custom=True),
)

# (group, plural) of the custom resources that have a CRD object.
CRD_SPECS: tuple[tuple[str, str], ...] = (
    ("guildnet.io", "workspaces"),
    ("guildnet.io", "capabilities"),
    ("metallb.io", "ipaddresspools"),
    ("metallb.io", "l2advertisements"),
)


def find_type(group: str, version: str, plural: str) -> ResourceType | None:
    for rtype in RESOURCE_TYPES:
        if rtype.group == group and rtype.version == version and rtype.plural == plural:
            return rtype
    return None


def isotime(when: _dt.datetime | None = None) -> str:
    moment = when if when is not None else _dt.datetime.now(_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_uid(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def meta(
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    created: str | None = None,
) -> Obj:
    m: Obj = {"name": name, "uid": fake_uid(namespace or "", name), "creationTimestamp": created or isotime()}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def prune_workspace_spec(spec: Any) -> Obj:
    """Apply the Workspace CRD's structural pruning (guildnet-host-app.md §0.1 fact 9)."""
    if not isinstance(spec, dict):
        return {}
    out: Obj = {}
    for key in ("image", "presetsRef", "notes"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    if isinstance(spec.get("env"), list):
        out["env"] = [{} for item in spec["env"] if isinstance(item, dict)]  # items have no properties
    if isinstance(spec.get("ports"), list):
        out["ports"] = [
            {k: p[k] for k in ("containerPort", "name", "protocol") if p.get(k) is not None}
            for p in spec["ports"]
            if isinstance(p, dict)
        ]
    if isinstance(spec.get("exposure"), dict):
        out["exposure"] = {
            k: v
            for k, v in spec["exposure"].items()
            if k in ("type", "domain", "ingressClass", "tlsIssuer") and v is not None
        }
    return out
