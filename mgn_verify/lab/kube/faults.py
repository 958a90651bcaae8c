"""How the Kubernetes simulator's object faults change what a client reads.

Each fault is a view over the stored objects (so clearing it restores the cluster exactly) that
describes one state a real cluster can be in, consistently across the objects involved:

``kubernetes.node_not_ready``
    The kubelet of ``lab-worker`` reports ``Ready=False`` (CNI not initialised); the node
    lifecycle controller has tainted it ``not-ready`` (NoSchedule, NoExecute).
``kubernetes.pod_crashloop``
    The tailscale subnet router's pod on ``lab-worker`` crashes at start: the container waits in
    ``CrashLoopBackOff`` after 7 restarts (last exit 1, Error), the pod is not Ready, its DaemonSet
    has 1 of 2 pods ready, and the kubelet logged a ``BackOff`` Warning event.
``kubernetes.operator_down``
    The workspace operator's pod runs but fails its readiness probe: the Deployment has 0 of 1
    replicas ready (``Available=False``, ``MinimumReplicasUnavailable``) and the kubelet logged
    an ``Unhealthy`` Warning event.
``kubernetes.no_default_storageclass``
    The ``standard`` StorageClass exists but is no longer annotated as the default.
``kubernetes.image_pull_failing``
    The node reaches no image registry (its DNS answers ``no such host``): a workspace whose pod
    starts meanwhile stays ``Pending``, its container waiting in ``ErrImagePull`` then
    ``ImagePullBackOff`` with the kubelet's ``Failed`` Warning events, its Deployment unavailable
    and the Workspace ``Pending``; running workspaces keep running and a pull retried after the
    fault is cleared succeeds. Played by the operator (:mod:`~mgn_verify.lab.kube.operator`), so
    it changes stored objects rather than a view; images under ``.invalid`` and malformed
    references fail the same way without the fault.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab.kube import builders as kb
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["OBJECT_FAULTS", "FaultView"]

OBJECT_FAULTS = frozenset({"kubernetes.node_not_ready", "kubernetes.pod_crashloop", "kubernetes.operator_down",
                           "kubernetes.no_default_storageclass", "kubernetes.image_pull_failing"})
_CRASH_NS, _CRASH_DS, _CRASH_POD = "kube-system", "tailscale-subnet-router", "tailscale-subnet-router-w2c6r"
_OP_NS, _OP_DEPLOY = "guildnet-system", "workspace-operator"
_DEFAULT = "storageclass.kubernetes.io/is-default-class"
_RESTARTS = 7


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return str(meta.get("namespace") or ""), str(meta["name"])


def _not_ready_pod(pod: Obj, waiting: Obj | None, last: Obj | None, restarts: int, when: str) -> Obj:
    pod = copy.deepcopy(pod)
    status = pod["status"]
    for cond in status["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady", lastTransitionTime=when,
                        message=f"containers with unready status: [{status['containerStatuses'][0]['name']}]")
    cs = status["containerStatuses"][0]
    cs.update(ready=False, restartCount=restarts)
    if waiting is not None:
        cs.update(started=False, state={"waiting": waiting})
    if last is not None:
        cs["lastState"] = {"terminated": last}
    return pod


def _event(ns: str, pod: Obj, reason: str, message: str, count: int, when: str, rv: str) -> Obj:
    name = pod["metadata"]["name"]
    meta = kr.meta(f"{name}.{kr.fake_uid(reason, name)[:8]}{kr.fake_uid(name)[-8:]}", ns, created=when)
    meta["resourceVersion"] = rv
    host = pod["spec"]["nodeName"]
    container = pod["spec"]["containers"][0]["name"]
    return {
        "apiVersion": "v1", "kind": "Event", "metadata": meta,
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": name, "uid": pod["metadata"]["uid"],
                           "apiVersion": "v1", "fieldPath": f"spec.containers{{{container}}}"},
        "reason": reason, "message": message, "type": "Warning", "count": count,
        "source": {"component": "kubelet", "host": host}, "firstTimestamp": when, "lastTimestamp": when,
        "reportingComponent": "kubelet", "reportingInstance": host,
    }


class FaultView:
    """Applies the active object faults to what the simulator serves."""

    def __init__(self, faults: FaultSet, *, node_not_ready_name: str, lookup: Callable[[str, str, str], Obj | None],
                 resource_version: Callable[[], str]) -> None:
        self.faults = faults
        self.node_not_ready_name = node_not_ready_name
        self._lookup = lookup  # (plural, namespace, name) -> stored object or None
        self._rv = resource_version

    def _on(self, name: str) -> bool:
        return self.faults.active(name)

    def obj(self, rtype: ResourceType, obj: Obj) -> Obj:
        """``obj`` as the faulty cluster shows it."""
        plural, key, when = rtype.plural, _key(obj), kr.isotime()
        if plural == "nodes" and self._on("kubernetes.node_not_ready") and key[1] == self.node_not_ready_name:
            return kb.not_ready(obj, when)
        if plural == "pods" and self._on("kubernetes.pod_crashloop") and key == (_CRASH_NS, _CRASH_POD):
            return self._crashing(obj, when)
        if plural == "daemonsets" and self._on("kubernetes.pod_crashloop") and key == (_CRASH_NS, _CRASH_DS):
            obj = copy.deepcopy(obj)
            desired = obj["status"]["desiredNumberScheduled"]
            obj["status"].update(numberReady=desired - 1, numberAvailable=desired - 1, numberUnavailable=1)
            return obj
        if self._on("kubernetes.operator_down"):
            if plural == "deployments" and key == (_OP_NS, _OP_DEPLOY):
                return self._operator_deployment(obj, when)
            if plural == "pods" and key[0] == _OP_NS and key[1].startswith(f"{_OP_DEPLOY}-"):
                return _not_ready_pod(obj, None, None, 0, when)
        if plural == "storageclasses" and self._on("kubernetes.no_default_storageclass"):
            annotations = obj["metadata"].get("annotations") or {}
            if _DEFAULT in annotations:
                obj = copy.deepcopy(obj)
                obj["metadata"]["annotations"] = {k: v for k, v in annotations.items() if k != _DEFAULT}
        return obj

    @staticmethod
    def _crashing(pod: Obj, when: str) -> Obj:
        container = pod["spec"]["containers"][0]["name"]
        waiting = {"reason": "CrashLoopBackOff",
                   "message": f"back-off 5m0s restarting failed container={container} "
                              f"pod={pod['metadata']['name']}_{_CRASH_NS}({pod['metadata']['uid']})"}
        last = {"exitCode": 1, "reason": "Error", "startedAt": when, "finishedAt": when,
                "containerID": f"containerd://{kr.fake_uid('crash', container).replace('-', '')}"}
        return _not_ready_pod(pod, waiting, last, _RESTARTS, when)

    @staticmethod
    def _operator_deployment(dep: Obj, when: str) -> Obj:
        dep = copy.deepcopy(dep)
        status = dep["status"]
        replicas = int(dep["spec"].get("replicas", 1))
        for key in ("readyReplicas", "availableReplicas"):
            status.pop(key, None)  # omitted when zero
        status["unavailableReplicas"] = replicas
        for cond in status["conditions"]:
            if cond["type"] == "Available":
                cond.update(status="False", reason="MinimumReplicasUnavailable",
                            message="Deployment does not have minimum availability.", lastUpdateTime=when,
                            lastTransitionTime=when)
        return dep

    def extra(self, rtype: ResourceType, namespace: str | None) -> list[Obj]:
        """Objects the faulty cluster has in addition (the kubelet's Warning events)."""
        if rtype.plural != "events":
            return []
        out: list[Obj] = []
        when, rv = kr.isotime(), self._rv()
        if self._on("kubernetes.pod_crashloop") and namespace in (None, _CRASH_NS):
            pod = self._lookup("pods", _CRASH_NS, _CRASH_POD)
            if pod is not None:
                container = pod["spec"]["containers"][0]["name"]
                out.append(_event(_CRASH_NS, pod, "BackOff", f"Back-off restarting failed container {container} in "
                                  f"pod {_CRASH_POD}_{_CRASH_NS}({pod['metadata']['uid']})", 31, when, rv))
        if self._on("kubernetes.operator_down") and namespace in (None, _OP_NS):
            pod = self._operator_pod()
            if pod is not None:
                ip = pod["status"].get("podIP", "10.244.0.3")
                out.append(_event(_OP_NS, pod, "Unhealthy", f'Readiness probe failed: Get "http://{ip}:8081/readyz": '
                                  f"dial tcp {ip}:8081: connect: connection refused", 42, when, rv))
        return out

    def _operator_pod(self) -> Obj | None:
        for suffix in ("x7k2p", "q9m4z"):
            pod = self._lookup("pods", _OP_NS, f"{_OP_DEPLOY}-5d8f7c9b6d-{suffix}")
            if pod is not None:
                return pod
        return None

