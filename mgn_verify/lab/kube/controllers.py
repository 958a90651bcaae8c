"""The Deployment, ReplicaSet and StatefulSet controllers (with kubelet and scheduler folded in)
for workloads created through the API.

A new or changed Deployment gets a ReplicaSet ``<name>-<template hash>`` (older ones are
removed) whose pods ``<rs>-<5 chars>`` carry the template's labels plus ``pod-template-hash``;
a StatefulSet gets pods ``<name>-0..N-1``. Pods start ``Pending`` (ContainerCreating) and,
``ready_delay`` seconds after the rollout began, are ``Running`` and Ready; the workload's
status follows (``observedGeneration``, ``replicas``, ``updatedReplicas``, ``readyReplicas``,
``availableReplicas``, the ``Available``/``Progressing`` conditions). Everything is computed
lazily on access and written only when it changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Protocol

from mgn_verify.lab.kube import builders as kb
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["ControllerHost", "WorkloadController", "pod_log_lines"]

Key = tuple[str, str]
_NODE, _NODE_IP = "lab-worker", "10.0.0.11"


class ControllerHost(Protocol):
    def rtype(self, group: str, plural: str) -> ResourceType: ...
    def objects(self, key: Key) -> dict[Key, Obj]: ...
    def put(self, rtype: ResourceType, obj: Obj) -> Obj: ...
    def touch(self, key: Key, obj: Obj) -> None: ...
    def remove(self, rtype: ResourceType, namespace: str, name: str) -> Obj | None: ...
    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None: ...
    def next_pod_ip(self) -> str: ...


def pod_log_lines(image: str) -> list[str]:
    """What a started container of ``image`` has logged (RethinkDB's ``Server ready`` included)."""
    if image.split("/")[-1].startswith("rethinkdb"):
        return ["Running rethinkdb 2.4.4~0bookworm (GCC 12.2.0)...",
                "Listening for client driver connections on port 28015",
                'Server ready, "rethinkdb_0" 3f6c0b5e-8f5e-4a7b-9c1d-2a4b6c8d0e1f']
    if "hostapp" in image:
        return ["operator: starting workspace controller", "operator: watching all namespaces"]
    return [f"[entrypoint] starting {image}"]


def _template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(c for c in digest if c.isalpha() or c in "56789")[:10] or digest[:10]


def _owner(obj: Obj, kind: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": kind, "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _cond(ctype: str, status: str, reason: str, message: str, when: str) -> Obj:
    return {"type": ctype, "status": status, "lastUpdateTime": when, "lastTransitionTime": when,
            "reason": reason, "message": message}


class WorkloadController:
    def __init__(self, host: ControllerHost, *, ready_delay: float) -> None:
        self.host = host
        self.ready_delay = ready_delay
        self._rollouts: dict[tuple[str, str, str], tuple[float, int]] = {}  # -> (started, generation)
        self._synced: dict[tuple[str, str, str], tuple[int, bool]] = {}

    def track(self, plural: str, ns: str, name: str, now: float, *, ready: bool = False) -> None:
        """A workload was created or changed; one already serving rolls out at once (the old pods
        keep it available during a real rolling update)."""
        self._rollouts[(plural, ns, name)] = (now - self.ready_delay if ready else now, -1)

    def reconcile(self, now: float) -> None:
        for key, (started, generation) in list(self._rollouts.items()):
            plural, ns, name = key
            obj = self.host.objects(("apps", plural)).get((ns, name))
            if obj is None:
                self._rollouts.pop(key, None)
                self._synced.pop(key, None)
                continue
            current = int(obj["metadata"].get("generation", 1))
            if current != generation:
                started = now if generation != -1 else started
                self._rollouts[key] = (started, current)
            ready = now - started >= self.ready_delay
            if self._synced.get(key) != (current, ready):
                self._synced[key] = (current, ready)
                self._sync(plural, obj, ready)

    def _sync(self, plural: str, obj: Obj, ready: bool) -> None:
        spec = obj.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        when = kr.isotime()
        if plural == "deployments":
            revision = _template_hash(template)
            owner = self._replicaset(obj, revision, replicas, ready, when)
            names = [f"{owner['name']}-{kr.fake_uid(owner['uid'], str(i))[-5:]}" for i in range(replicas)]
            extra = {"pod-template-hash": revision}
        else:
            revision = f"{obj['metadata']['name']}-{_template_hash(template)}"
            owner = _owner(obj, "StatefulSet")
            names = [f"{obj['metadata']['name']}-{i}" for i in range(replicas)]
            extra = {"controller-revision-hash": revision}
        self._pods(obj["metadata"]["namespace"], owner, names, template, extra, ready, when)
        self._status(plural, obj, replicas, ready, revision, when)

    def _replicaset(self, dep: Obj, revision: str, replicas: int, ready: bool, when: str) -> Obj:
        ns, dname = dep["metadata"]["namespace"], dep["metadata"]["name"]
        name = f"{dname}-{revision}"
        mine = _owner(dep, "Deployment")
        for (rns, rname), rs in list(self.host.objects(("apps", "replicasets")).items()):
            owners = rs["metadata"].get("ownerReferences") or []
            if rns == ns and rname != name and any(o.get("uid") == mine["uid"] for o in owners):
                self.host.remove(self.host.rtype("apps", "replicasets"), ns, rname)  # the old revision
        template = copy.deepcopy(dep["spec"].get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = revision
        selector = copy.deepcopy(dep["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = revision
        meta = kr.meta(name, ns, template["metadata"]["labels"], created=when)
        meta.update(uid=kr.fake_uid("rs", dep["metadata"]["uid"], revision), generation=1, ownerReferences=[mine],
                    annotations={"deployment.kubernetes.io/revision": "1"})
        existing = self.host.objects(("apps", "replicasets")).get((ns, name))
        if existing is not None:
            meta["creationTimestamp"] = existing["metadata"]["creationTimestamp"]
        status: Obj = {"replicas": replicas, "fullyLabeledReplicas": replicas, "observedGeneration": 1}
        if ready and replicas:
            status.update(readyReplicas=replicas, availableReplicas=replicas)
        self.host.put(self.host.rtype("apps", "replicasets"), {
            "metadata": meta, "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": status})
        return _owner({"metadata": meta}, "ReplicaSet")

    def _pods(self, ns: str, owner: Obj, names: list[str], template: Obj, extra: dict[str, str], ready: bool,
              when: str) -> None:
        pods = self.host.objects(("", "pods"))
        for (pns, pname), pod in list(pods.items()):
            owned = any(o.get("uid") == owner["uid"] for o in pod["metadata"].get("ownerReferences") or [])
            if pns == ns and owned and pname not in names:
                self.host.remove(self.host.rtype("", "pods"), ns, pname)  # scaled down
        labels = {**((template.get("metadata") or {}).get("labels") or {}), **extra}
        pod_spec = copy.deepcopy(template.get("spec") or {})
        containers = [(str(c.get("name")), str(c.get("image"))) for c in pod_spec.get("containers") or []]
        for name in names:
            old = pods.get((ns, name))
            ip = ((old or {}).get("status") or {}).get("podIP") or self.host.next_pod_ip()
            pod = kb.pod(name, ns, {**labels, **({"statefulset.kubernetes.io/pod-name": name}
                                                  if owner["kind"] == "StatefulSet" else {})},
                         containers, node_name=_NODE, pod_ip=ip, host_ip=_NODE_IP, running=ready, when=when,
                         owner=owner)
            if old is not None:
                pod["metadata"]["uid"] = old["metadata"]["uid"]
                pod["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            pod["spec"] = {**pod_spec, "nodeName": _NODE, "serviceAccountName":
                           pod_spec.get("serviceAccountName", "default")}
            self.host.put(self.host.rtype("", "pods"), pod)
            if ready and containers:
                self.host.set_pod_log(ns, name, pod_log_lines(containers[0][1]))

    def _status(self, plural: str, obj: Obj, replicas: int, ready: bool, revision: str, when: str) -> None:
        generation = int(obj["metadata"].get("generation", 1))
        status: Obj = {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas}
        if ready and replicas:
            status.update(readyReplicas=replicas, availableReplicas=replicas)
        elif plural == "deployments":
            status["unavailableReplicas"] = replicas
        else:
            status["availableReplicas"] = 0
        if plural == "deployments":
            name = obj["metadata"]["name"]
            status["conditions"] = [
                _cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", when)
                if ready or not replicas else
                _cond("Available", "False", "MinimumReplicasUnavailable",
                      "Deployment does not have minimum availability.", when),
                _cond("Progressing", "True", "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated",
                      f'ReplicaSet "{name}-{revision}" has '
                      + ("successfully progressed." if ready else "is progressing."), when)]
        else:
            status.update(currentReplicas=replicas, currentRevision=revision, updateRevision=revision,
                          collisionCount=0)
        keep = ("replicas", "availableReplicas", "collisionCount") if plural == "statefulsets" else ()
        obj["status"] = {k: v for k, v in status.items() if v != 0 or k in keep}
        self.host.touch(("apps", plural), obj)
