"""Server-side printing: the ``Table`` kube-apiserver answers when a client (kubectl) asks for
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``.

The columns and cells are those of kube-apiserver v1.30's table printers
(``pkg/printers/internalversion/printers.go``) for pods, deployments, statefulsets,
replicasets, daemonsets, services, namespaces and nodes; a custom resource gets its CRD's
``additionalPrinterColumns`` (simple JSONPaths) or, without any, an ``Age`` column; every other
type gets the default ``Name``/``Created At`` table. Each row carries the object's metadata as a
``PartialObjectMetadata`` (the default ``includeObject=Metadata``), which is where kubectl reads a
row's namespace from.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["human_duration", "table", "wants_table"]

Column = tuple[str, str, int]  # name, type, priority (1: only with -o wide)
_NONE = "<none>"


def wants_table(accept: str) -> str | None:
    """The meta.k8s.io version of the Table the ``Accept`` header asks for first, or None."""
    for media in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in media.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``: ``5s``, ``3m20s``, ``2d4h``, ..."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = hours // 24 // 365, hours // 24 % 365
    return f"{years}y{days}d" if years < 8 and days else f"{years}y"


def _age(stamp: Any) -> str:
    try:
        then = _dt.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((_dt.datetime.now(_dt.UTC) - then).total_seconds())


def _d(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _labels(selector: Any) -> str:
    """``metav1.FormatLabelSelector`` for matchLabels (``<none>`` when empty)."""
    labels = _d(_d(selector).get("matchLabels") or selector)
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels) if isinstance(labels[k], str)) or _NONE


def _template(obj: Obj) -> tuple[str, str]:
    containers = _d(_d(_d(obj.get("spec")).get("template")).get("spec")).get("containers") or []
    return (",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers))


def _pod(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    reason = str(status.get("reason") or status.get("phase") or "")
    ready, restarts, running = 0, 0, False
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount") or 0)
        state = _d(cs.get("state"))
        if _d(state.get("waiting")).get("reason"):
            reason = state["waiting"]["reason"]
        elif _d(state.get("terminated")).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            code = state["terminated"].get("exitCode", 0)
            reason = f"Signal:{state['terminated']['signal']}" if state["terminated"].get("signal") \
                else f"ExitCode:{code}"
        elif cs.get("ready") and "running" in state:
            running, ready = True, ready + 1
    if reason == "Completed" and running:
        ok = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if ok else "NotReady"
    if _d(obj.get("metadata")).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    last = [_d(_d(cs.get("lastState")).get("terminated")).get("finishedAt")
            for cs in status.get("containerStatuses") or []]
    finished = max((str(t) for t in last if t), default="")
    restarts_text = f"{restarts} ({_age(finished)} ago)" if restarts and finished else str(restarts)
    gates = spec.get("readinessGates") or []
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, restarts_text,
            _age(_d(obj.get("metadata")).get("creationTimestamp")), status.get("podIP") or _NONE,
            spec.get("nodeName") or _NONE, status.get("nominatedNodeName") or _NONE,
            f"0/{len(gates)}" if gates else _NONE]


def _deployment(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _template(obj)
    return [f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0),
            _age(obj["metadata"].get("creationTimestamp")), names, images, _labels(spec.get("selector"))]


def _statefulset(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _template(obj)
    return [f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            _age(obj["metadata"].get("creationTimestamp")), names, images]


def _replicaset(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _template(obj)
    return [int(spec.get("replicas") or 0), int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0),
            _age(obj["metadata"].get("creationTimestamp")), names, images, _labels(spec.get("selector"))]


def _daemonset(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    names, images = _template(obj)
    node_selector = _d(_d(_d(spec.get("template")).get("spec")).get("nodeSelector"))
    return [*(int(status.get(k) or 0) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                                  "updatedNumberScheduled", "numberAvailable")),
            ",".join(f"{k}={node_selector[k]}" for k in sorted(node_selector)) or _NONE,
            _age(obj["metadata"].get("creationTimestamp")), names, images, _labels(spec.get("selector"))]


def _service(obj: Obj) -> list[Any]:
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    stype = str(spec.get("type") or "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if stype == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in _d(status.get("loadBalancer")).get("ingress") or []]
        shown = ",".join(str(i) for i in [*ingress, *external] if i) or "<pending>"
    elif stype == "ExternalName":
        shown = str(spec.get("externalName") or _NONE)
    else:
        shown = ",".join(external) or _NONE
    ports = ",".join(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
                     else f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    cluster_ip = _NONE if stype == "ExternalName" else str(spec.get("clusterIP") or _NONE)
    selector = _d(spec.get("selector"))
    return [stype, cluster_ip, shown, ports or _NONE, _age(obj["metadata"].get("creationTimestamp")),
            ",".join(f"{k}={selector[k]}" for k in sorted(selector)) or _NONE]


def _namespace(obj: Obj) -> list[Any]:
    return [_d(obj.get("status")).get("phase") or "", _age(obj["metadata"].get("creationTimestamp"))]


def _node(obj: Obj) -> list[Any]:
    status, labels = _d(obj.get("status")), _d(obj["metadata"].get("labels"))
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    if _d(obj.get("spec")).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted({k.removeprefix("node-role.kubernetes.io/") for k in labels
                    if k.startswith("node-role.kubernetes.io/")} |
                   ({str(labels["kubernetes.io/role"])} if labels.get("kubernetes.io/role") else set()))
    info = _d(status.get("nodeInfo"))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [state, ",".join(r for r in roles if r) or _NONE, _age(obj["metadata"].get("creationTimestamp")),
            info.get("kubeletVersion", ""), addresses.get("InternalIP") or _NONE,
            addresses.get("ExternalIP") or _NONE, info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


_TEMPLATE = [("Containers", "string", 1), ("Images", "string", 1)]
_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    ("", "pods"): ([("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0),
                    ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1),
                    ("Nominated Node", "string", 1), ("Readiness Gates", "string", 1)], _pod),
    ("apps", "deployments"): ([("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                               ("Age", "string", 0), *_TEMPLATE, ("Selector", "string", 1)], _deployment),
    ("apps", "statefulsets"): ([("Ready", "string", 0), ("Age", "string", 0), *_TEMPLATE], _statefulset),
    ("apps", "replicasets"): ([("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                               ("Age", "string", 0), *_TEMPLATE, ("Selector", "string", 1)], _replicaset),
    ("apps", "daemonsets"): ([("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                              ("Up-to-date", "integer", 0), ("Available", "integer", 0),
                              ("Node Selector", "string", 0), ("Age", "string", 0), *_TEMPLATE,
                              ("Selector", "string", 1)], _daemonset),
    ("", "services"): ([("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
                        ("Port(s)", "string", 0), ("Age", "string", 0), ("Selector", "string", 1)], _service),
    ("", "namespaces"): ([("Status", "string", 0), ("Age", "string", 0)], _namespace),
    ("", "nodes"): ([("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
                     ("Version", "string", 0), ("Internal-IP", "string", 1), ("External-IP", "string", 1),
                     ("OS-Image", "string", 1), ("Kernel-Version", "string", 1),
                     ("Container-Runtime", "string", 1)], _node),
}


def _path(obj: Any, json_path: str) -> Any:
    """A simple JSONPath (``.status.phase``) of a printer column; missing: None."""
    for part in json_path.strip().lstrip(".").split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _custom_cell(ctype: str, value: Any) -> Any:
    """The apiextensions table convertor's ``cellForJSONValue`` (strings printed as JSONPath does)."""
    if value is None:
        return None
    if ctype == "string":
        return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if ctype == "integer":
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if ctype == "number":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if ctype == "boolean":
        return value if isinstance(value, bool) else None
    if ctype == "date":
        return _age(value) if isinstance(value, str) else None
    return None


def _custom(columns: list[Obj]) -> tuple[list[Obj], Callable[[Obj], list[Any]]]:
    columns = columns or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    defs = [{"name": c.get("name", ""), "type": c.get("type", "string"), "format": c.get("format", ""),
             "description": c.get("description") or
             f"Custom resource definition column (in JSONPath format): {c.get('jsonPath', '')}",
             "priority": int(c.get("priority") or 0)} for c in columns]
    return defs, lambda obj: [_custom_cell(str(c.get("type", "string")), _path(obj, str(c.get("jsonPath", ""))))
                              for c in columns]


def _column(name: str, ctype: str, priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": ctype, "format": fmt, "description": f"{name} of the object.",
            "priority": priority}


def table(rtype: ResourceType, items: list[Obj], *, metadata: Obj, version: str = "v1",
          printer_columns: list[Obj] | None = None) -> Obj:
    """The Table of ``items`` (already as the server shows them); ``printer_columns``: a custom
    resource's ``additionalPrinterColumns``."""
    name_column = _column("Name", "string", fmt="name")
    if rtype.custom:
        defs, cells = _custom(printer_columns or [])
        columns = [name_column, *defs]
    elif rtype.key in _PRINTERS:
        specs, cells = _PRINTERS[rtype.key]
        columns = [name_column, *(_column(n, t, p) for n, t, p in specs)]
    else:  # rest.NewDefaultTableConvertor
        columns = [name_column, _column("Created At", "date")]

        def cells(obj: Obj) -> list[Any]:
            return [obj["metadata"].get("creationTimestamp")]
    rows = []
    for obj in items:
        meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
        rows.append({"cells": [obj["metadata"]["name"], *cells(obj)],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                                "metadata": meta}})
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": metadata,
            "columnDefinitions": columns, "rows": rows}
