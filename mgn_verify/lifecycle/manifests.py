"""What ``mgn install`` puts on a cluster, as plain Kubernetes objects (dicts in wire shape).

The objects follow the GuildNet contract (guildnet-host-app.md): the Workspace and Capability
CRDs (§3.1), the workspace operator's Namespace, ServiceAccount, RBAC and Deployment (§3.3),
and RethinkDB's LoadBalancer Service and StatefulSet (§4.1, with the ``---`` upstream forgot).
They are listed in the order they are applied: CRDs first (the operator watches them), the
namespace before what lives in it, the RBAC before the Deployment that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PLACEHOLDER_OPERATOR_IMAGE", "InstallSettings", "capability_crd", "install_objects", "operator_objects",
           "rethinkdb_objects", "workspace_crd"]

Obj = dict[str, Any]

#: The operator image GuildNet's deploy-operator.sh defaults to (contract doc §3.3), and so
#: ``install.operator_image``'s default: no registry serves it (``mgn install`` warns).
PLACEHOLDER_OPERATOR_IMAGE = "ghcr.io/your/module/hostapp:latest"
OPERATOR = "workspace-operator"
RETHINKDB = "rethinkdb"
_CONTROL_PLANE_TOLERATIONS = [
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
]


@dataclass(frozen=True)
class InstallSettings:
    """The ``install.*`` settings that shape the objects."""

    operator_image: str = PLACEHOLDER_OPERATOR_IMAGE
    namespace: str = "guildnet-system"
    rethinkdb_namespace: str = "default"
    rethinkdb_image: str = "rethinkdb:2.4"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InstallSettings:
        return cls(str(config["install.operator_image"]), str(config["install.namespace"]),
                   str(config["install.rethinkdb_namespace"]), str(config["install.rethinkdb_image"]))


def install_objects(settings: InstallSettings) -> list[Obj]:
    """Every object, in apply order."""
    namespaces = [_namespace(settings.namespace)]
    if settings.rethinkdb_namespace not in (settings.namespace, "default"):  # "default" always exists
        namespaces.append(_namespace(settings.rethinkdb_namespace))
    return [workspace_crd(), capability_crd(), *namespaces, *operator_objects(settings),
            *rethinkdb_objects(settings)]


# -- CRDs (§3.1) -------------------------------------------------------------------------------


def _crd(plural: str, kind: str, short: str, schema: Obj, *, status: bool = False,
         columns: list[Obj] | None = None) -> Obj:
    version: Obj = {"name": "v1alpha1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    if status:
        version["subresources"] = {"status": {}}
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.guildnet.io"},
        "spec": {
            "group": "guildnet.io",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List",
                      "shortNames": [short]},
            "versions": [version],
        },
    }


def _str() -> Obj:
    return {"type": "string"}


def workspace_crd() -> Obj:
    """``workspaces.guildnet.io``: ``spec.image`` required, status subresource, Phase/Image/Ready."""
    port = {"type": "object", "required": ["containerPort"], "properties": {
        "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535}, "name": _str(), "protocol": _str()}}
    spec = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "minLength": 1},
        # Upstream's items have no properties, so the API server prunes every env entry to {}:
        # keeping unknown fields lets the operator see the name/value pairs it expects.
        "env": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "ports": {"type": "array", "items": port},
        "exposure": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["ClusterIP", "LoadBalancer", "Ingress"]},
            "domain": _str(), "ingressClass": _str(), "tlsIssuer": _str()}},
        "presetsRef": _str(),
        "notes": _str(),
    }}
    status = {"type": "object", "properties": {
        "phase": {"type": "string", "enum": ["Pending", "Running", "Failed", "Terminating"]},
        "readyReplicas": {"type": "integer"},
        **{key: _str() for key in ("serviceDNS", "serviceIP", "externalURL", "proxyTarget", "lastError")},
    }}
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    ]
    schema = {"type": "object", "required": ["spec"],
              "properties": {"spec": spec, "status": status}}
    return _crd("workspaces", "Workspace", "ws", schema, status=True, columns=columns)


def capability_crd() -> Obj:
    """``capabilities.guildnet.io``: ``spec.actions`` required, a selector and constraints."""
    strings = {"type": "array", "items": _str()}
    spec = {"type": "object", "required": ["actions"], "properties": {
        "actions": strings,
        "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},  # a LabelSelector
        "constraints": {"type": "object", "properties": {
            "allowedImages": strings,
            "allowedPorts": {"type": "array", "items": {"type": "integer"}},
            "maxConcurrent": {"type": "integer"},
        }},
    }}
    status = {"type": "object", "properties": {"observedGeneration": {"type": "integer", "format": "int64"}}}
    schema = {"type": "object", "properties": {"spec": spec, "status": status}}
    return _crd("capabilities", "Capability", "cap", schema)


# -- the workspace operator (§3.3) ---------------------------------------------------------------


def _namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


_ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]


def operator_objects(settings: InstallSettings) -> list[Obj]:
    """ServiceAccount, ClusterRole, ClusterRoleBinding and Deployment ``workspace-operator``."""
    ns = settings.namespace
    labels = {"app": OPERATOR}
    rules = [
        _rule([""], ["configmaps", "secrets", "services"], _ALL),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(["apps"], ["deployments"], _ALL),
        _rule(["networking.k8s.io"], ["ingresses"], _ALL),
        _rule(["guildnet.io"], ["workspaces"], _ALL),
        _rule(["guildnet.io"], ["workspaces/status"], ["get", "update", "patch"]),
    ]
    container: Obj = {
        "name": "operator",
        "image": settings.operator_image,
        "command": ["/usr/local/bin/hostapp"],
        "args": ["operator"],
        "env": [{"name": "K8S_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
    }
    if settings.operator_image.endswith(":local"):
        container["imagePullPolicy"] = "Never"  # a locally built image is not in any registry
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": OPERATOR},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": OPERATOR},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": OPERATOR},
         "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": ns}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": OPERATOR, "namespace": ns, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": OPERATOR, "containers": [container]}}}},
    ]


# -- RethinkDB (§4.1) ------------------------------------------------------------------------------


def rethinkdb_objects(settings: InstallSettings) -> list[Obj]:
    """Service ``rethinkdb`` (LoadBalancer, port ``client`` 28015) and its StatefulSet."""
    ns = settings.rethinkdb_namespace
    labels = {"app": RETHINKDB}
    probe = {"httpGet": {"path": "/", "port": 8080}}
    container: Obj = {
        "name": RETHINKDB,
        "image": settings.rethinkdb_image,
        "command": ["rethinkdb", "--bind", "all", "--cache-size", "128"],
        "ports": [{"name": "client", "containerPort": 28015}, {"name": "cluster", "containerPort": 29015},
                  {"name": "admin", "containerPort": 8080}],
        "readinessProbe": {**probe, "initialDelaySeconds": 5, "periodSeconds": 10},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 20},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": RETHINKDB, "namespace": ns, "labels": labels},
         "spec": {"type": "LoadBalancer", "selector": labels,
                  "ports": [{"name": "client", "port": 28015, "targetPort": 28015, "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": RETHINKDB, "namespace": ns, "labels": labels},
         "spec": {
             "serviceName": RETHINKDB, "replicas": 1, "selector": {"matchLabels": labels},
             "template": {"metadata": {"labels": labels}, "spec": {
                 "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                 "tolerations": _CONTROL_PLANE_TOLERATIONS,
                 "containers": [container]}},
             "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                 "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
         }},
    ]
