"""The object store under the Kubernetes simulator: typed objects by (namespace, name), the types
it serves (custom resources while their CRD exists), resourceVersions and the change log watches
read, and reads that run the lazy controllers first. :class:`~mgn_verify.lab.kube.store.KubeState`
adds the write path (admission, apply) on top.

One re-entrant lock guards everything; the controllers (the workload controller and the GuildNet
operator) run inside it on whichever request thread touches the store, so a reader never sees a
half-reconciled state and a list's resourceVersion covers every item it returns.
"""

from __future__ import annotations

import builtins
import collections
import copy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mgn_verify.lab.kube import crds as kcrd
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.controllers import WorkloadController
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.network import ServiceNetwork
from mgn_verify.lab.kube.operator import GuildNetOperator
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.select import label_matcher

__all__ = ["ObjectStore", "WatchEvent"]

WS = ("guildnet.io", "workspaces")
CRD = ("apiextensions.k8s.io", "customresourcedefinitions")
Key = tuple[str, str]

@dataclass(frozen=True)
class WatchEvent:
    """One change as a watch sees it: ``prev`` is the object before a MODIFIED (for selectors)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: tuple[str, str]
    obj: Obj
    prev: Obj | None = None


class ObjectStore(ServiceNetwork):
    """Stored objects, served types and the change log (see the module docstring)."""

    _lock: threading.RLock
    _changed: threading.Condition
    _log: collections.deque[WatchEvent]
    _objects: dict[Key, dict[Key, Obj]]
    _types: dict[Key, ResourceType]
    _crd_types: dict[Key, ResourceType]
    _rv: int
    _pod_logs: dict[Key, builtins.list[str]]
    operator: GuildNetOperator
    controller: WorkloadController

    # -- types --------------------------------------------------------------------------------

    def rtype(self, group: str, plural: str) -> ResourceType:
        return self._crd_types.get((group, plural)) or self._types[(group, plural)]

    def served(self, rtype: ResourceType) -> bool:
        with self._lock:
            return not rtype.custom or rtype.key in self._crd_types

    def served_types(self) -> builtins.list[ResourceType]:
        with self._lock:
            return [rt for rt in kr.RESOURCE_TYPES if not rt.custom] + builtins.list(self._crd_types.values())

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.served_types():
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def _require_served(self, rtype: ResourceType) -> None:
        if not self.served(rtype):
            raise KubeApiError.not_served()

    def _register(self, crd: Obj, *, present: bool) -> None:
        rtype = kcrd.type_from_crd(crd)
        if rtype is None:
            return
        if present:
            self._crd_types[rtype.key] = rtype
            self._objects.setdefault(rtype.key, {})
            return
        self._crd_types.pop(rtype.key, None)
        for (ns, name) in builtins.list(self._objects.get(rtype.key, {})):
            self.remove(rtype, ns, name)  # a deleted CRD takes its objects along

    # -- generic store (unchecked: seeding, controllers) ---------------------------------------

    def objects(self, key: Key) -> dict[Key, Obj]:
        """The stored objects of one type, by (namespace, name): the caller holds the lock."""
        return self._objects.setdefault(key, {})

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
            prev = self.objects(rtype.key).get((ns, obj["metadata"]["name"]))
            self.objects(rtype.key)[(ns, obj["metadata"]["name"])] = obj
            self._record("ADDED" if prev is None else "MODIFIED", rtype.key, obj, prev)
            if rtype.key == CRD:
                self._register(obj, present=True)
            return obj

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> Obj | None:
        """Delete one object and (recursively) what it owns, logging DELETED events."""
        with self._lock:
            key = (namespace if rtype.namespaced else "", name)
            obj = self.objects(rtype.key).pop(key, None)
            if obj is None:
                return None
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._record("DELETED", rtype.key, gone)
            if rtype.key == ("", "pods"):
                self._pod_logs.pop(key, None)
            if rtype.key == WS:
                self.operator.forget(key)
            if rtype.key == CRD:
                self._register(obj, present=False)
            uid = obj["metadata"].get("uid")
            for rkey, store in builtins.list(self._objects.items()):
                for (ons, oname), other in builtins.list(store.items()):
                    if any(o.get("uid") == uid for o in other["metadata"].get("ownerReferences") or []):
                        self.remove(self.rtype(*rkey), ons, oname)
            return obj

    def _record(self, kind: str, key: Key, obj: Obj, prev: Obj | None = None) -> None:
        self._log.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), kind, key, copy.deepcopy(obj),
                                    copy.deepcopy(prev) if prev is not None else None))
        self._changed.notify_all()

    def touch(self, key: Key, obj: Obj) -> None:
        """``obj`` (already stored under ``key``) was changed in place: new resourceVersion, logged."""
        prev = self._log_prev(key, obj)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._record("MODIFIED", key, obj, prev)

    def _log_prev(self, key: Key, obj: Obj) -> Obj | None:
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

    # -- the API: read -----------------------------------------------------------------------------

    def list(self, rtype: ResourceType, namespace: str | None = None,
             label_selector: str | None = None) -> builtins.list[Obj]:
        matches = label_matcher(label_selector)
        with self._lock:
            self._require_served(rtype)
            self._reconcile()
            items = [o for (ns, _), o in sorted(self.objects(rtype.key).items())
                     if (namespace is None or ns == namespace) and matches(o)]
            return copy.deepcopy(items)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._lock:
            self._require_served(rtype)
            self._reconcile()
            obj = self.objects(rtype.key).get(((namespace or "") if rtype.namespaced else "", name))
            if obj is None:
                raise KubeApiError.not_found(rtype, name)
            return copy.deepcopy(obj)


    def list_at(self, rtype: ResourceType, namespace: str | None = None) -> tuple[int, builtins.list[Obj]]:
        """(resourceVersion, objects) read together: the version covers every object returned
        (the controllers that ran during the read included), as a list's metadata must."""
        with self._lock:
            items = self.list(rtype, namespace)
            return self._rv, items

    # -- helpers for the Host App, the service proxy and tests ---------------------------------------

    def pod_log(self, namespace: str, name: str) -> builtins.list[str]:
        with self._lock:
            self.get(self.rtype("", "pods"), namespace, name)
            return builtins.list(self._pod_logs.get((namespace, name), []))

    def set_pod_log(self, namespace: str, name: str, lines: Iterable[str]) -> None:
        with self._lock:
            self._pod_logs[(namespace, name)] = builtins.list(lines)

    def _reconcile(self) -> None:
        now = time.monotonic()
        self.controller.reconcile(now)
        self.operator.reconcile(now)
