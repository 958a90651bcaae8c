"""What kube-apiserver does to an object between the request and storage: validation (422
Invalid with the real field paths and messages) and defaulting, for the kinds an install
creates (Deployments, StatefulSets, Services, Namespaces).

Services get a ClusterIP (10.96.0.0/12), node ports for NodePort/LoadBalancer, and a
LoadBalancer one its ingress IP from the MetalLB ``IPAddressPool`` (as MetalLB's controller
assigns it; no pool, no ingress: the Service stays pending).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["default_object", "go_map", "pool_addresses", "validate_object"]

Cause = tuple[str, str, str]
_REQUIRED = ("FieldValueRequired", "Required value")


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def go_map(labels: Any) -> str:
    """``fmt`` of a Go ``map[string]string`` (keys sorted), as validation messages print it."""
    if not isinstance(labels, dict) or not labels:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(f'"{k}":"{labels[k]}"' for k in sorted(labels)) + "}"


def _containers(causes: list[Cause], pod_spec: Any, where: str) -> None:
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not containers:
        causes.append((f"{where}.containers", *_REQUIRED))
        return
    for i, c in enumerate(containers):
        for key in ("name", "image"):
            if not isinstance(c, dict) or not c.get(key):
                causes.append((f"{where}.containers[{i}].{key}", *_REQUIRED))


def _workload_causes(rtype: ResourceType, obj: Obj) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    causes: list[Cause] = []
    selector = spec.get("selector")
    template = _dict(spec.get("template"))
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict):
        causes.append(("spec.selector", *_REQUIRED))
    else:
        wanted = selector.get("matchLabels") or {}
        if not wanted and not selector.get("matchExpressions"):
            causes.append(("spec.selector", "FieldValueInvalid", "Invalid value: v1.LabelSelector{MatchLabels:"
                           f"{go_map(wanted)}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: empty selector "
                           f"is invalid for {rtype.singular}"))
        elif any(labels.get(k) != v for k, v in wanted.items()):
            causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                           f"Invalid value: {go_map(labels)}: `selector` does not match template `labels`"))
    _containers(causes, template.get("spec"), "spec.template.spec")
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(("spec.replicas", "FieldValueInvalid",
                       f"Invalid value: {replicas}: must be greater than or equal to 0"))
    return causes


def _service_causes(obj: Obj) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    causes: list[Cause] = []
    stype = spec.get("type") or "ClusterIP"
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(("spec.type", "FieldValueNotSupported", f'Unsupported value: "{stype}": supported values: '
                       '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'))
    ports: list[Any] = spec["ports"] if isinstance(spec.get("ports"), list) else []
    if stype != "ExternalName" and not ports:
        causes.append(("spec.ports", *_REQUIRED))
    for i, p in enumerate(ports):
        port = p.get("port") if isinstance(p, dict) else None
        if not isinstance(port, int) or not 1 <= port <= 65535:
            causes.append((f"spec.ports[{i}].port", "FieldValueInvalid",
                           f"Invalid value: {port or 0}: must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and isinstance(p, dict) and not p.get("name"):
            causes.append((f"spec.ports[{i}].name", *_REQUIRED))
    return causes


def validate_object(rtype: ResourceType, name: str, obj: Obj) -> None:
    """Raise 422 Invalid for what the real validation of ``rtype`` rejects (the kinds above)."""
    if rtype.key in (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets")):
        causes = _workload_causes(rtype, obj)
    elif rtype.key == ("", "services"):
        causes = _service_causes(obj)
    else:
        return
    if causes:
        raise KubeApiError.invalid(rtype.kind, rtype.group, name, causes)


# -- defaulting -----------------------------------------------------------------------------------


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        c.setdefault("imagePullPolicy", _pull_policy(str(c.get("image", ""))))
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


def _default_workload(rtype: ResourceType, spec: Obj) -> None:
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    if rtype.plural == "deployments":
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        spec.setdefault("progressDeadlineSeconds", 600)
    elif rtype.plural == "statefulsets":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}))


def pool_addresses(pools: Iterable[Obj]) -> list[str]:
    """Every address of the MetalLB pools that assign automatically, in order."""
    out: list[str] = []
    for pool in pools:
        spec = pool.get("spec") or {}
        if spec.get("autoAssign") is False:
            continue
        for block in spec.get("addresses") or []:
            text = str(block)
            if "-" in text:
                low, high = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
                out.extend(str(ipaddress.ip_address(n)) for n in range(int(low), int(high) + 1))
            else:
                out.extend(str(ip) for ip in ipaddress.ip_network(text, strict=False))
    return out


def _default_service(spec: Obj, status: Obj, cluster_ip: str, node_port: Any, lb_ip: str | None) -> None:
    stype = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if stype != "ExternalName":
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = cluster_ip
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
        if stype in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = node_port()
    if stype in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        status["loadBalancer"] = {"ingress": [{"ip": lb_ip, "ipMode": "VIP"}]} if lb_ip else {}
    else:
        status["loadBalancer"] = {}


def default_object(rtype: ResourceType, obj: Obj, *, cluster_ip: str = "", node_port: Any = None,
                   lb_ip: str | None = None) -> None:
    """Fill in the defaults kube-apiserver (and, for a LoadBalancer's address, MetalLB) sets, in
    place. ``node_port`` is a callable giving a free node port."""
    if rtype.key in (("apps", "deployments"), ("apps", "statefulsets")):
        _default_workload(rtype, obj.setdefault("spec", {}))
        # The controller writes it; StatefulSetStatus.replicas/availableReplicas are not omitempty.
        obj["status"] = {"replicas": 0, "availableReplicas": 0} if rtype.plural == "statefulsets" else {}
    elif rtype.key == ("", "services"):
        _default_service(obj.setdefault("spec", {}), obj.setdefault("status", {}), cluster_ip, node_port, lb_ip)
    elif rtype.key == ("", "namespaces"):
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
