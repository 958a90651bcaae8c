"""The GuildNet workspace operator, played by the simulated cluster (guildnet-host-app.md §3.2).

It runs only while Deployment ``guildnet-system/workspace-operator`` exists and is available
and the ``kubernetes.operator_down`` fault is off (``gate``): a Workspace created meanwhile
keeps no ``status`` until the operator is up. From the moment the operator can see a new
Workspace, after ``pending_delay`` seconds it has created a Deployment, Service and Pod and
written phase ``Pending``; after ``running_delay`` the pod is ready and the phase is ``Running``
with ``readyReplicas``. Time is checked lazily on every access of the store.

At ``running_delay`` the kubelet pulls the image (:mod:`~mgn_verify.lab.kube.images`): one it
cannot pull (a malformed reference, a registry under ``.invalid``, any image while
``registry_down()``, the ``kubernetes.image_pull_failing`` fault) leaves the pod Pending with the
container waiting in ``ErrImagePull`` and, ``pull_backoff`` seconds later, ``ImagePullBackOff``
(or ``InvalidImageName``), the kubelet's events recorded, the Deployment unavailable and the
Workspace ``Pending`` without ``readyReplicas``. A later pull that succeeds (the fault cleared)
starts the workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from mgn_verify.lab.kube import builders as kb
from mgn_verify.lab.kube import images
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["OPERATOR", "WORKSPACE_LABEL", "GuildNetOperator", "OperatorHost"]

WORKSPACE_LABEL = "guildnet.io/workspace"
OPERATOR = ("guildnet-system", "workspace-operator")
_WS = ("guildnet.io", "workspaces")
Key = tuple[str, str]


class OperatorHost(Protocol):
    """What the operator uses of the store (``KubeState`` is one)."""

    def rtype(self, group: str, plural: str) -> ResourceType: ...
    def objects(self, key: Key) -> dict[Key, Obj]: ...
    def put(self, rtype: ResourceType, obj: Obj) -> Obj: ...
    def touch(self, key: Key, obj: Obj) -> None: ...
    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None: ...
    def next_cluster_ip(self) -> str: ...
    def next_pod_ip(self) -> str: ...


class GuildNetOperator:
    def __init__(self, host: OperatorHost, *, pending_delay: float, running_delay: float,
                 pull_backoff: float = 1.0) -> None:
        self.host = host
        self.pending_delay = pending_delay
        self.running_delay = max(running_delay, pending_delay)
        #: Seconds from ``ErrImagePull`` to ``ImagePullBackOff`` (the kubelet's first back-off is 10 s).
        self.pull_backoff = pull_backoff
        #: False while the operator's pod is unhealthy (the ``kubernetes.operator_down`` fault).
        self.gate: Callable[[], bool] = lambda: True
        #: True while no image can be pulled (the ``kubernetes.image_pull_failing`` fault).
        self.registry_down: Callable[[], bool] = lambda: False
        self._born: dict[Key, float] = {}
        self._stage: dict[Key, int] = {}
        self._failing: set[Key] = set()  # workspaces whose image pull failed
        self._up_since: float | None = None

    def track(self, key: Key, now: float) -> None:
        self._born[key] = now
        self._stage[key] = 0

    def forget(self, key: Key) -> None:
        self._born.pop(key, None)
        self._stage.pop(key, None)
        self._failing.discard(key)

    def available(self) -> bool:
        dep = self.host.objects(("apps", "deployments")).get(OPERATOR)
        ready = int(((dep or {}).get("status") or {}).get("availableReplicas") or 0)
        return dep is not None and ready >= 1 and self.gate()

    def reconcile(self, now: float) -> None:
        if not self.available():
            self._up_since = None  # nothing progresses; the clock restarts when it is back
            return
        if self._up_since is None:
            self._up_since = now
        for key, born in list(self._born.items()):
            age = now - max(born, self._up_since)
            stage = (3 if age >= self.running_delay + self.pull_backoff else 2 if age >= self.running_delay
                     else 1 if age >= self.pending_delay else 0)
            previous = self._stage.get(key, 0)
            if stage > previous:
                self._stage[key] = stage
                if stage < 3 or key in self._failing or previous < 2:  # stage 3 only backs off a failed pull
                    self._operate(key, stage, previous)
            elif key in self._failing and self._pull_failure(key) is None:
                self._operate(key, stage, previous)  # the kubelet's retry succeeds: the workspace starts

    def _pull_failure(self, key: Key) -> images.PullFailure | None:
        ws = self.host.objects(_WS).get(key)
        image = str((ws or {}).get("spec", {}).get("image"))
        return images.pull_failure(image, registry_down=self.registry_down()) if ws is not None else None

    def _operate(self, key: Key, stage: int, previous: int) -> None:
        ns, name = key
        ws = self.host.objects(_WS).get(key)
        if ws is None:
            return
        failure = self._pull_failure(key) if stage >= 2 else None
        if failure is None:
            self._failing.discard(key)
        else:
            self._failing.add(key)
        running = stage >= 2 and failure is None
        when = kr.isotime()
        owner = {"apiVersion": "guildnet.io/v1alpha1", "kind": "Workspace", "name": name,
                 "uid": ws["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
        spec = ws.get("spec", {})
        ports = [(p.get("name"), int(p["containerPort"])) for p in spec.get("ports") or [] if "containerPort" in p]
        ports = ports or [("http", 8080)]
        labels = {WORKSPACE_LABEL: name}
        image = str(spec.get("image"))
        services = self.host.objects(("", "services"))
        if key not in services:
            lb = None
            if (spec.get("exposure") or {}).get("type") == "LoadBalancer":
                lb = f"10.0.0.{240 + len(services) % 10}"
            svc = kb.service(name, ns, self.host.next_cluster_ip(), ports, labels=labels, selector=labels,
                             lb_ip=lb, when=when, owner=owner)
            svc["spec"]["publishNotReadyAddresses"] = True
            self.host.put(self.host.rtype("", "services"), svc)
        self.host.put(self.host.rtype("apps", "deployments"), kb.deployment(
            name, ns, labels, [("workspace", image)], ready=1 if running else 0, when=when, owner=owner))
        pod_name = f"{name}-{kr.fake_uid(ws['metadata']['uid'])[:10]}-{kr.fake_uid(name)[-5:]}"
        pods = self.host.objects(("", "pods"))
        old_ip = ((pods.get((ns, pod_name)) or {}).get("status") or {}).get("podIP")
        pod_ip = old_ip or self.host.next_pod_ip()
        pod = kb.pod(pod_name, ns, labels, [("workspace", image)], node_name="lab-worker",
                     pod_ip=pod_ip, host_ip="10.0.0.11", running=running, when=when, owner=owner)
        pod["spec"]["containers"][0]["ports"] = [
            {"containerPort": port, **({"name": pname} if pname else {}), "protocol": "TCP"} for pname, port in ports]
        if failure is not None:
            pod = self._failed_pull(pod, failure, stage, previous, pod_ip, when)
        self.host.put(self.host.rtype("", "pods"), pod)
        if running:
            self.host.set_pod_log(ns, pod_name, ["[entrypoint] workspace container starting",
                                                 f"HTTP server listening on http://0.0.0.0:{ports[0][1]}"])
        svc = services[key]
        status: Obj = {"phase": "Running" if running else "Pending"}
        if running:
            status["readyReplicas"] = 1  # omitted while 0 (omitempty)
        status.update(serviceDNS=f"{name}.{ns}.svc", serviceIP=svc["spec"]["clusterIP"],
                      proxyTarget=f"http://{name}.{ns}.svc:{ports[0][1]}")
        ws["status"] = status
        self.host.touch(_WS, ws)

    def _failed_pull(self, pod: Obj, failure: images.PullFailure, stage: int, previous: int, pod_ip: str,
                     when: str) -> Obj:
        """The pod as the kubelet leaves it, and its events for each step reached since ``previous``."""
        steps: list[images.Stage] = [images.ERR_IMAGE_PULL, images.IMAGE_PULL_BACKOFF]
        reached = [steps[s - 2] for s in range(max(previous, 1) + 1, stage + 1)]
        if failure.reason == images.INVALID_IMAGE_NAME:
            reached = [step for step in reached if step == images.ERR_IMAGE_PULL]  # a reference never backs off
        for step in reached:
            for event in images.pull_events(pod, "workspace", failure, step, when):
                self.host.put(self.host.rtype("", "events"), event)
        return images.failing_pod(pod, failure, steps[min(stage, 3) - 2], pod_ip)
