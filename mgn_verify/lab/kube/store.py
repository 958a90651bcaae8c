"""Cluster state shared by the Kubernetes and Host App simulators.

``KubeState`` is a thread-safe object store seeded with a small GuildNet cluster (two nodes,
CoreDNS, MetalLB, the workspace operator, RethinkDB, the Workspace/Capability CRDs). It also
plays the GuildNet operator for ``Workspace`` objects: a new CR has no ``status`` key; after
``workspace_pending_delay`` seconds the operator has created a Deployment, Service and Pod and
written phase ``Pending``; after ``workspace_running_delay`` the pod is ready and the phase is
``Running`` with ``readyReplicas`` (guildnet-host-app.md §0.1 fact 10, §3.2). Time is checked
lazily on every access, so no background thread is needed.
"""

from __future__ import annotations

import builtins
import collections
import copy
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType, prune_workspace_spec
from mgn_verify.lab.kube.seed import seed_cluster
from mgn_verify.lab.kube.select import label_matcher

__all__ = ["AccessRule", "KubeState", "WatchEvent"]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_WS = ("guildnet.io", "workspaces")
WORKSPACE_LABEL = "guildnet.io/workspace"
_LOG_SIZE = 1000  # changes kept for watches that resume from a resourceVersion (the watch cache)


@dataclass(frozen=True)
class WatchEvent:
    """One change as a watch sees it: ``prev`` is the object before a MODIFIED (for selectors)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: tuple[str, str]
    obj: Obj
    prev: Obj | None = None


@dataclass(frozen=True)
class AccessRule:
    """One SelfSubjectAccessReview rule; ``*`` matches anything. First match wins."""

    verb: str = "*"
    resource: str = "*"  # for nonResourceAttributes this is matched against the path
    group: str = "*"
    namespace: str = "*"
    allowed: bool = True

    def matches(self, verb: str, resource: str, group: str, namespace: str) -> bool:
        return all(
            rule in ("*", value)
            for rule, value in (
                (self.verb, verb),
                (self.resource, resource),
                (self.group, group),
                (self.namespace, namespace),
            )
        )


class KubeState:
    """Thread-safe objects of one simulated cluster."""

    def __init__(
        self,
        *,
        workspace_pending_delay: float = 0.5,
        workspace_running_delay: float = 2.0,
        rethinkdb_endpoint: tuple[str, int] = ("127.0.0.1", 28015),
        seed: bool = True,
    ) -> None:
        self.workspace_pending_delay = workspace_pending_delay
        self.workspace_running_delay = max(workspace_running_delay, workspace_pending_delay)
        self.access_rules: list[AccessRule] = [AccessRule()]
        self.user = "lab-admin"
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._log: collections.deque[WatchEvent] = collections.deque(maxlen=_LOG_SIZE)
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {
            rt.key: {} for rt in kr.RESOURCE_TYPES
        }
        self._types = {rt.key: rt for rt in kr.RESOURCE_TYPES}
        self._rv = 1000
        self._ws_born: dict[tuple[str, str], float] = {}
        self._ws_stage: dict[tuple[str, str], int] = {}
        self._pod_logs: dict[tuple[str, str], list[str]] = {}
        self._ip_counter = 20
        if seed:
            seed_cluster(self, rethinkdb_endpoint)

    # -- generic store -------------------------------------------------------------------------

    def rtype(self, group: str, plural: str) -> ResourceType:
        return self._types[(group, plural)]

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def put(self, rtype: ResourceType, obj: Obj) -> Obj:
        """Store ``obj`` as-is (no validation), filling apiVersion/kind/resourceVersion."""
        with self._lock:
            obj = {"apiVersion": rtype.group_version, "kind": rtype.kind, **obj}
            obj["metadata"]["resourceVersion"] = self._next_rv()
            ns = obj["metadata"].get("namespace", "") if rtype.namespaced else ""
            prev = self._objects[rtype.key].get((ns, obj["metadata"]["name"]))
            self._objects[rtype.key][(ns, obj["metadata"]["name"])] = obj
            self._record("ADDED" if prev is None else "MODIFIED", rtype.key, obj, prev)
            return obj

    def _record(self, kind: str, key: tuple[str, str], obj: Obj, prev: Obj | None = None) -> None:
        self._log.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), kind, key, copy.deepcopy(obj),
                                    copy.deepcopy(prev) if prev is not None else None))
        self._changed.notify_all()

    def _touch(self, key: tuple[str, str], obj: Obj) -> None:
        """``obj`` (already stored under ``key``) was changed in place: new resourceVersion, logged."""
        prev = self._log_prev(key, obj)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._record("MODIFIED", key, obj, prev)

    def _log_prev(self, key: tuple[str, str], obj: Obj) -> Obj | None:
        uid = obj["metadata"].get("uid")
        for event in reversed(self._log):
            if event.key == key and event.obj["metadata"].get("uid") == uid:
                return event.obj
        return None

    def changes_since(self, rv: int) -> builtins.list[WatchEvent] | None:
        """Changes after ``rv``, oldest first; None when ``rv`` is older than what is kept (410)."""
        with self._lock:
            self._reconcile()
            if self._log and rv < self._log[0].rv - 1 and len(self._log) == self._log.maxlen:
                return None
            return [e for e in self._log if e.rv > rv]

    def wait_for_change(self, rv: int, timeout: float) -> None:
        """Block until something newer than ``rv`` is logged, or ``timeout`` seconds pass."""
        with self._lock:
            self._reconcile()
            if self._rv <= rv:
                self._changed.wait(timeout)

    def list(
        self, rtype: ResourceType, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[Obj]:
        matches = label_matcher(label_selector)
        with self._lock:
            self._reconcile()
            items = [
                o
                for (ns, _), o in sorted(self._objects[rtype.key].items())
                if (namespace is None or ns == namespace) and matches(o)
            ]
            return copy.deepcopy(items)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._lock:
            self._reconcile()
            obj = self._objects[rtype.key].get(((namespace or "") if rtype.namespaced else "", name))
            if obj is None:
                raise KubeApiError.not_found(rtype, name)
            return copy.deepcopy(obj)

    def create(self, rtype: ResourceType, namespace: str | None, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise KubeApiError(400, "BadRequest", "the object provided is unrecognized")
        with self._lock:
            self._reconcile()
            obj = copy.deepcopy(body)
            m = obj.setdefault("metadata", {})
            name = str(m.get("name") or "")
            if not name and m.get("generateName"):
                name = f"{m['generateName']}{secrets.token_hex(3)[:5]}"
            if not name or len(name) > 253 or not _DNS1123.match(name):
                raise KubeApiError(
                    422,
                    "Invalid",
                    f"{rtype.kind}{'.' + rtype.group if rtype.group else ''} "
                    f'"{name}" is invalid: metadata.name: Invalid value: "{name}"',
                    {
                        "name": name,
                        "group": rtype.group,
                        "kind": rtype.kind,
                        "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name"}],
                    },
                )
            ns = (namespace or m.get("namespace") or "default") if rtype.namespaced else ""
            if (ns, name) in self._objects[rtype.key]:
                details: Obj = {"name": name, "kind": rtype.plural}
                if rtype.group:
                    details["group"] = rtype.group
                raise KubeApiError(
                    409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', details
                )
            if rtype.key == _WS:
                obj["spec"] = prune_workspace_spec(obj.get("spec"))
                obj.pop("status", None)  # status is a subresource: ignored on create
                if not obj["spec"].get("image"):
                    raise KubeApiError(
                        422,
                        "Invalid",
                        f'Workspace.guildnet.io "{name}" is invalid: spec.image: Required value',
                        {
                            "name": name,
                            "group": "guildnet.io",
                            "kind": "Workspace",
                            "causes": [
                                {
                                    "reason": "FieldValueRequired",
                                    "message": "Required value",
                                    "field": "spec.image",
                                }
                            ],
                        },
                    )
            m.update(
                name=name,
                uid=kr.fake_uid(rtype.plural, ns, name, secrets.token_hex(4)),
                creationTimestamp=kr.isotime(),
                generation=1,
            )
            m.pop("generateName", None)
            if rtype.namespaced:
                m["namespace"] = ns
            stored = self.put(rtype, obj)
            if rtype.key == _WS:
                self._ws_born[(ns, name)] = time.monotonic()
                self._ws_stage[(ns, name)] = 0
            return copy.deepcopy(stored)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._lock:
            self._reconcile()
            key = ((namespace or "") if rtype.namespaced else "", name)
            obj = self._objects[rtype.key].pop(key, None)
            if obj is None:
                raise KubeApiError.not_found(rtype, name)
            self._deleted(rtype.key, obj)
            self._garbage_collect(obj["metadata"].get("uid", ""))
            self._ws_born.pop(key, None)
            self._ws_stage.pop(key, None)
            self._pod_logs.pop(key, None)
            return copy.deepcopy(obj)

    def _deleted(self, rkey: tuple[str, str], obj: Obj) -> None:
        # A DELETED event carries the last state with a new resourceVersion, as etcd3 watches do.
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self._record("DELETED", rkey, gone)

    def _garbage_collect(self, owner_uid: str) -> None:
        for rkey, store in self._objects.items():
            for key, obj in list(store.items()):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == owner_uid for o in owners):
                    store.pop(key)
                    self._deleted(rkey, obj)
                    self._pod_logs.pop(key, None)

    # -- helpers for the Host App and tests --------------------------------------------------

    def pod_log(self, namespace: str, name: str) -> builtins.list[str]:
        with self._lock:
            self.get(self.rtype("", "pods"), namespace, name)
            return list(self._pod_logs.get((namespace, name), []))

    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None:
        with self._lock:
            self._pod_logs[(namespace, name)] = list(lines)

    def set_rethinkdb_endpoint(self, host: str, port: int) -> None:
        """Point Service ``default/rethinkdb`` (LoadBalancer) at ``host:port``."""
        with self._lock:
            svc = self._objects[("", "services")][("default", "rethinkdb")]
            svc["spec"]["ports"][0].update(port=port, targetPort=port)
            svc["status"] = {"loadBalancer": {"ingress": [{"ip": host, "ipMode": "VIP"}]}}
            self._touch(("", "services"), svc)

    def rethinkdb_endpoint(self) -> tuple[str, int] | None:
        with self._lock:
            svc = self._objects[("", "services")].get(("default", "rethinkdb"))
            if svc is None:
                return None
            ingress = svc["status"].get("loadBalancer", {}).get("ingress") or []
            host = ingress[0].get("ip") if ingress else svc["spec"].get("clusterIP")
            return (str(host), int(svc["spec"]["ports"][0]["port"]))

    def review_access(self, verb: str, resource: str, group: str, namespace: str) -> bool:
        with self._lock:
            for rule in self.access_rules:
                if rule.matches(verb, resource, group, namespace):
                    return rule.allowed
        return False

    # -- the GuildNet operator -------------------------------------------------------------------

    def _reconcile(self) -> None:
        now = time.monotonic()
        for key, born in list(self._ws_born.items()):
            age = now - born
            stage = (
                2 if age >= self.workspace_running_delay else 1 if age >= self.workspace_pending_delay else 0
            )
            if stage > self._ws_stage.get(key, 0):
                self._ws_stage[key] = stage
                self._operate(key, running=stage == 2)

    def _operate(self, key: tuple[str, str], *, running: bool) -> None:
        ns, name = key
        ws = self._objects[_WS].get(key)
        if ws is None:
            return
        when = kr.isotime()
        uid = ws["metadata"]["uid"]
        owner = {
            "apiVersion": "guildnet.io/v1alpha1",
            "kind": "Workspace",
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        spec = ws.get("spec", {})
        ports = [
            (p.get("name"), int(p["containerPort"])) for p in spec.get("ports") or [] if "containerPort" in p
        ]
        ports = ports or [("http", 8080)]
        labels = {WORKSPACE_LABEL: name}
        image = str(spec.get("image"))
        svc_key = (ns, name)
        services = self._objects[("", "services")]
        if svc_key not in services:
            lb = None
            if (spec.get("exposure") or {}).get("type") == "LoadBalancer":
                lb = f"10.0.0.{240 + len(services) % 10}"
            self._ip_counter += 1
            self.put(
                self.rtype("", "services"),
                kr.service(
                    name,
                    ns,
                    f"10.96.{self._ip_counter // 250}.{self._ip_counter % 250 + 1}",
                    ports,
                    labels=labels,
                    selector=labels,
                    lb_ip=lb,
                    when=when,
                    owner=owner,
                ),
            )
        self.put(
            self.rtype("apps", "deployments"),
            kr.deployment(
                name, ns, labels, [("workspace", image)], ready=1 if running else 0, when=when, owner=owner
            ),
        )
        pod_name = f"{name}-{kr.fake_uid(uid)[:10]}-{kr.fake_uid(name)[-5:]}"
        self.put(
            self.rtype("", "pods"),
            kr.pod(
                pod_name,
                ns,
                labels,
                [("workspace", image)],
                node_name="lab-worker",
                pod_ip=f"10.244.1.{self._ip_counter}",
                host_ip="10.0.0.11",
                running=running,
                when=when,
                owner=owner,
            ),
        )
        if running:
            self._pod_logs[(ns, pod_name)] = [
                "[entrypoint] workspace container starting",
                f"HTTP server listening on http://0.0.0.0:{ports[0][1]}",
            ]
        svc = services[svc_key]
        status: Obj = {"phase": "Running" if running else "Pending"}
        if running:
            status["readyReplicas"] = 1  # omitted while 0 (omitempty)
        status.update(
            serviceDNS=f"{name}.{ns}.svc",
            serviceIP=svc["spec"]["clusterIP"],
            proxyTarget=f"http://{name}.{ns}.svc:{ports[0][1]}",
        )
        ws["status"] = status
        self._touch(_WS, ws)
