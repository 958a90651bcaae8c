"""Resource types and object builders for the Kubernetes simulator.

Builders return plain JSON-ready dicts in the exact wire shape of kube-apiserver
(protocols.md §2.4). Every field the 37.x client's strict models require (§2.3) is present,
with the right JSON type: a missing one makes the real client raise a ValidationError.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CRD_SPECS",
    "RESOURCE_TYPES",
    "Obj",
    "ResourceType",
    "daemonset",
    "deployment",
    "find_type",
    "isotime",
    "meta",
    "node",
    "pod",
    "prune_workspace_spec",
    "service",
    "statefulset",
]

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


def _cond(ctype: str, status: str, reason: str, message: str, when: str, *, heartbeat: bool = False) -> Obj:
    c: Obj = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
    }
    if heartbeat:
        c["lastHeartbeatTime"] = when
    else:
        c["lastUpdateTime"] = when
    return c


def node(name: str, ip: str, *, control_plane: bool, when: str) -> Obj:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    spec: Obj = {"podCIDR": f"10.244.{ip.rsplit('.', 1)[1]}.0/24"}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
        spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    resources = {
        "cpu": "4",
        "memory": "16374284Ki",
        "pods": "110",
        "ephemeral-storage": "102626232Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocatable = dict(resources, memory="16271884Ki", **{"ephemeral-storage": "94580335255"})
    conditions = [
        _cond("NetworkUnavailable", "False", "FlannelIsUp", "Flannel is running on this node", when, heartbeat=True),
        _cond(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            when,
            heartbeat=True,
        ),
        _cond(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            when,
            heartbeat=True,
        ),
        _cond(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            when,
            heartbeat=True,
        ),
        _cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", when, heartbeat=True),
    ]
    info = {
        "machineID": fake_uid("machine", name).replace("-", ""),
        "systemUUID": fake_uid("system", name),
        "bootID": fake_uid("boot", name),
        "kernelVersion": "6.1.0-18-amd64",
        "osImage": "Debian GNU/Linux 12 (bookworm)",
        "containerRuntimeVersion": "containerd://1.7.13",
        "kubeletVersion": "v1.30.2",
        "kubeProxyVersion": "v1.30.2",
        "operatingSystem": "linux",
        "architecture": "amd64",
    }
    return {
        "metadata": meta(name, labels=labels, created=when),
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": info,
        },
    }


def not_ready(node_obj: Obj, when: str) -> Obj:
    """The node as the kubelet reports it when the CNI is broken: Ready False."""
    status = node_obj["status"]
    conditions = [c for c in status["conditions"] if c["type"] != "Ready"]
    conditions.append(
        _cond(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            "message:Network plugin returns error: cni plugin not initialized",
            when,
            heartbeat=True,
        )
    )
    # The node lifecycle controller taints a NotReady node at once (TaintNodesByCondition).
    taints = [t for t in node_obj["spec"].get("taints") or [] if t["key"] != "node.kubernetes.io/not-ready"]
    taints += [{"key": "node.kubernetes.io/not-ready", "effect": effect, "timeAdded": when}
               for effect in ("NoSchedule", "NoExecute")]
    spec = {**node_obj["spec"], "taints": taints}
    return {**node_obj, "spec": spec, "status": {**status, "conditions": conditions}}


def _template(labels: dict[str, str], containers: list[tuple[str, str]]) -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": n, "image": i} for n, i in containers]},
    }


def _workload(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    when: str,
    spec: Obj,
    status: Obj,
    owner: Obj | None = None,
) -> Obj:
    """A Deployment/DaemonSet/StatefulSet at generation 1: ``spec`` gets selector and template."""
    m = meta(name, ns, labels, created=when)
    m["generation"] = 1
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {
        "metadata": m,
        "spec": {**spec, "selector": {"matchLabels": dict(labels)}, "template": _template(labels, containers)},
        "status": status,
    }


def deployment(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    replicas: int = 1,
    ready: int = 1,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    status: Obj = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas}
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    if replicas - ready:
        status["unavailableReplicas"] = replicas - ready
    avail = (
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        if ready
        else ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    )
    status["conditions"] = [
        _cond("Available", *avail, when),
        _cond(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{name}-5d8f7c9b6d" has successfully progressed.',
            when,
        ),
    ]
    # The counters are omitted when zero (protocols.md §2.4), so drop zero values.
    status = {k: v for k, v in status.items() if v != 0}
    return _workload(name, ns, labels, containers, when, {"replicas": replicas}, status, owner)


def daemonset(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    desired: int,
    ready: int,
    when: str,
) -> Obj:
    status: Obj = {
        "currentNumberScheduled": desired,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": desired,
        "observedGeneration": 1,
    }
    return _workload(name, ns, labels, containers, when, {}, status)


def statefulset(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    replicas: int,
    ready: int,
    when: str,
) -> Obj:
    status: Obj = {
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": ready,
        "observedGeneration": 1,
    }
    return _workload(name, ns, labels, containers, when, {"replicas": replicas, "serviceName": name}, status)


def pod(
    name: str,
    ns: str,
    labels: dict[str, str],
    containers: list[tuple[str, str]],
    *,
    node_name: str,
    pod_ip: str,
    host_ip: str,
    running: bool,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    statuses = []
    for cname, image in containers:
        cs: Obj = {
            "name": cname,
            "image": image,
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
        }
        if running:
            cs["imageID"] = f"{image.split(':')[0]}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
            cs["containerID"] = f"containerd://{hashlib.sha256((name + cname).encode()).hexdigest()}"
            cs["state"] = {"running": {"startedAt": when}}
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        cs["lastState"] = {}
        statuses.append(cs)
    flag = "True" if running else "False"
    conds = [
        {"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": when}
        for t, s in (
            ("PodReadyToStartContainers", flag),
            ("Initialized", "True"),
            ("Ready", flag),
            ("ContainersReady", flag),
            ("PodScheduled", "True"),
        )
    ]
    status: Obj = {
        "phase": "Running" if running else "Pending",
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": when,
        "qosClass": "BestEffort",
        "containerStatuses": statuses,
    }
    if running:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    m = meta(name, ns, labels, created=when)
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {
        "metadata": m,
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": n, "image": i} for n, i in containers],
            "restartPolicy": "Always",
            "serviceAccountName": "default",
        },
        "status": status,
    }


def service(
    name: str,
    ns: str,
    cluster_ip: str,
    ports: list[tuple[str | None, int]],
    *,
    labels: dict[str, str],
    selector: dict[str, str] | None,
    lb_ip: str | None = None,
    when: str,
    owner: Obj | None = None,
) -> Obj:
    port_objs: list[Obj] = []
    for pname, port in ports:
        p: Obj = {"port": port, "targetPort": port, "protocol": "TCP"}
        if pname:
            p["name"] = pname
        if lb_ip is not None:
            p["nodePort"] = 30000 + port % 2768
        port_objs.append(p)
    spec: Obj = {
        "type": "LoadBalancer" if lb_ip is not None else "ClusterIP",
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ports": port_objs,
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
    }
    if selector:
        spec["selector"] = dict(selector)
    status: Obj = {"loadBalancer": {"ingress": [{"ip": lb_ip, "ipMode": "VIP"}]} if lb_ip else {}}
    m = meta(name, ns, labels, created=when)
    if owner is not None:
        m["ownerReferences"] = [owner]
    return {"metadata": m, "spec": spec, "status": status}


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
