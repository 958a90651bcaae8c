"""Cluster state shared by the Kubernetes and Host App simulators.

``KubeState`` is a thread-safe object store seeded with a small GuildNet cluster (two nodes,
CoreDNS, MetalLB, the workspace operator, RethinkDB, the Workspace/Capability CRDs), or with
``bare=True`` the same cluster without GuildNet (:mod:`~mgn_verify.lab.kube.seed`). Writes go
through what kube-apiserver does (:mod:`~mgn_verify.lab.kube.admission`,
:mod:`~mgn_verify.lab.kube.crds`, :mod:`~mgn_verify.lab.kube.patch`): a custom resource is
served only while its CRD exists, namespaced objects need their namespace, deleting a
namespace deletes its objects, owner references are garbage-collected. Two controllers run
lazily on every access: the workload controller (:mod:`~mgn_verify.lab.kube.controllers`) and
the GuildNet operator (:mod:`~mgn_verify.lab.kube.operator`). Storage, served types, the change
log and reads are :class:`~mgn_verify.lab.kube.objects.ObjectStore`; the write path is here.
"""

from __future__ import annotations

import builtins
import collections
import copy
import threading
import time
from dataclasses import dataclass
from typing import Any

from mgn_verify.lab.kube import crds as kcrd
from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube import writes
from mgn_verify.lab.kube.admission import default_object, validate_object
from mgn_verify.lab.kube.controllers import WorkloadController
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.network import carry_allocations
from mgn_verify.lab.kube.objects import CRD, WS, Key, ObjectStore, WatchEvent
from mgn_verify.lab.kube.operator import WORKSPACE_LABEL, GuildNetOperator
from mgn_verify.lab.kube.patch import APPLY, apply, json_patch, merge_patch, record_update, strategic_merge_patch
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.seed import seed_cluster

__all__ = ["WORKSPACE_LABEL", "AccessRule", "KubeState", "WatchEvent"]

_NS = ("", "namespaces")
_WORKLOADS = (("apps", "deployments"), ("apps", "statefulsets"))
_PROTECTED_NS = ("default", "kube-system", "kube-public")
_LOG_SIZE = 1000  # changes kept for watches that resume from a resourceVersion (the watch cache)


@dataclass(frozen=True)
class AccessRule:
    """One SelfSubjectAccessReview rule; ``*`` matches anything. First match wins."""

    verb: str = "*"
    resource: str = "*"  # for nonResourceAttributes this is matched against the path
    group: str = "*"
    namespace: str = "*"
    allowed: bool = True

    def matches(self, verb: str, resource: str, group: str, namespace: str) -> bool:
        return all(rule in ("*", value) for rule, value in
                   ((self.verb, verb), (self.resource, resource), (self.group, group), (self.namespace, namespace)))


class KubeState(ObjectStore):
    """Thread-safe objects of one simulated cluster."""

    def __init__(self, *, workspace_pending_delay: float = 0.5, workspace_running_delay: float = 2.0,
                 workload_ready_delay: float = 0.3, rethinkdb_endpoint: tuple[str, int] = ("127.0.0.1", 28015),
                 seed: bool = True, bare: bool = False) -> None:
        self.access_rules: list[AccessRule] = [AccessRule()]
        self.user = "lab-admin"
        self.bare = bare
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._log: collections.deque[WatchEvent] = collections.deque(maxlen=_LOG_SIZE)
        self._objects: dict[Key, dict[Key, Obj]] = {rt.key: {} for rt in kr.RESOURCE_TYPES}
        self._types = {rt.key: rt for rt in kr.RESOURCE_TYPES}
        self._crd_types: dict[Key, ResourceType] = {}  # served custom resources, from the stored CRDs
        self._rv = 1000
        self._pod_logs: dict[Key, list[str]] = {}
        self._ip_counter = 20
        self._pod_ips = 0
        self._node_ports = 0
        self._rdb_target = rethinkdb_endpoint
        self.operator = GuildNetOperator(self, pending_delay=workspace_pending_delay,
                                         running_delay=workspace_running_delay)
        self.controller = WorkloadController(self, ready_delay=workload_ready_delay)
        if seed:
            seed_cluster(self, rethinkdb_endpoint, guildnet=not bare)

    # -- the API: write ----------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, *, manager: str = "hostapp") -> Obj:
        if not isinstance(body, dict):
            raise KubeApiError(400, "BadRequest", "the object provided is unrecognized")
        writes.check_namespace(rtype, namespace, body)
        with self._lock:
            self._require_served(rtype)
            self._reconcile()
            obj = copy.deepcopy(body)
            m = obj.setdefault("metadata", {})
            name = str(m.get("name") or "")
            if not name and m.get("generateName"):
                name = f"{m['generateName']}{kr.fake_uid(str(time.monotonic_ns()))[-5:]}"
            writes.check_name(rtype, name)
            ns = (namespace or m.get("namespace") or "default") if rtype.namespaced else ""
            if rtype.namespaced:
                self._require_namespace(ns)
            if (ns, name) in self.objects(rtype.key):
                raise KubeApiError.already_exists(rtype, name)
            record_update(None, obj, manager, rtype.group_version)
            writes.new_metadata(rtype, obj, name, ns)
            return self._admit_and_store(rtype, None, obj)

    def _require_namespace(self, ns: str) -> None:
        namespace = self.objects(_NS).get(("", ns))
        if namespace is None:
            raise KubeApiError.not_found(self._types[_NS], ns)
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            raise KubeApiError(403, "Forbidden", f"unable to create new content in namespace {ns} because it is "
                               "being terminated", {"name": ns, "kind": "namespaces"})

    def _admit_and_store(self, rtype: ResourceType, old: Obj | None, obj: Obj) -> Obj:
        name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace", "")
        if rtype.key == WS and old is None:
            writes.prepare_workspace(name, obj)
        if rtype.key == CRD:
            kcrd.validate_crd(name, obj)
            kcrd.establish(obj)
        validate_object(rtype, name, obj)
        if rtype.key == ("", "services") and (ns, name) == ("default", "rethinkdb"):
            self._pin_rethinkdb(obj)
        if old is None:
            default_object(rtype, obj, cluster_ip=self.next_cluster_ip(), node_port=self._next_node_port,
                           lb_ip=self._lb_ip(ns, name, obj))
        else:
            if rtype.key == ("", "services"):
                carry_allocations(old, obj)
            default_object(rtype, obj, node_port=self._next_node_port)
            if rtype.key in _WORKLOADS or rtype.key == ("", "services"):
                obj["status"] = copy.deepcopy(old.get("status") or {})
            writes.bump_generation(old, obj)
        if old is not None and writes.same_object(old, {**obj, "apiVersion": old.get("apiVersion"),
                                                          "kind": old.get("kind")}):
            return copy.deepcopy(old)  # a no-op write: no new resourceVersion
        stored = self.put(rtype, obj)
        if rtype.key == _NS and old is None:
            self._namespace_controllers(name)
        now = time.monotonic()
        if rtype.key == WS and old is None:
            self.operator.track((ns, name), now)
        if rtype.key in _WORKLOADS:
            ready = int(((old or {}).get("status") or {}).get("availableReplicas") or 0) > 0
            self.controller.track(rtype.plural, ns, name, now, ready=ready)
        return copy.deepcopy(stored)

    def _namespace_controllers(self, ns: str) -> None:
        """What the service-account and root-CA controllers add to a new namespace."""
        when = kr.isotime()
        self.put(self.rtype("", "serviceaccounts"), {"metadata": kr.meta("default", ns, created=when)})
        self.put(self.rtype("", "configmaps"), {"metadata": kr.meta("kube-root-ca.crt", ns, created=when),
                                                "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}})

    def replace(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, *, manager: str,
                status_only: bool = False) -> Obj:
        """PUT: resourceVersion (when given) must be current, the name must match the URL."""
        writes.check_namespace(rtype, namespace, body)
        with self._lock:
            old = self.get(rtype, namespace, name)
            meta = body.get("metadata") if isinstance(body, dict) else None
            if isinstance(meta, dict) and meta.get("name") not in (None, name):
                raise KubeApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match "
                                   f"the name on the URL ({name})")
            if isinstance(meta, dict) and meta.get("resourceVersion") not in (None, "", old["metadata"]
                                                                                ["resourceVersion"]):
                raise KubeApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.qualified} "{name}": '
                                   "the object has been modified; please apply your changes to the latest version "
                                   "and try again", {"name": name, "group": rtype.group, "kind": rtype.plural})
            new = writes.merge_update(rtype, old, body, status_only=status_only)
            record_update(old, new, manager, rtype.group_version)
            return self._admit_and_store(rtype, old, new)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, patch_type: str, body: Any, *,
              manager: str, force: bool = False, status_only: bool = False) -> tuple[Obj, bool]:
        """PATCH of each content type; returns (object, created): an apply may create."""
        with self._lock:
            self._require_served(rtype)
            try:
                old: Obj | None = self.get(rtype, namespace, name)
            except KubeApiError as err:
                if err.code != 404 or patch_type != APPLY:
                    raise
                old = None
            if patch_type == APPLY:
                return self._apply(rtype, namespace, name, old, body, manager, force)
            if force:
                raise KubeApiError(422, "Invalid", "force: Forbidden: may not be specified for non-apply patch")
            assert old is not None
            if patch_type == "application/json-patch+json":
                patched = json_patch(old, body)
            elif patch_type == "application/strategic-merge-patch+json":
                patched = strategic_merge_patch(old, body)
            else:
                patched = merge_patch(old, body)
            new = writes.merge_update(rtype, old, patched, status_only=status_only)
            record_update(old, new, manager, rtype.group_version)
            return self._admit_and_store(rtype, old, new), False

    def _apply(self, rtype: ResourceType, namespace: str | None, name: str, old: Obj | None, config: Any,
               manager: str, force: bool) -> tuple[Obj, bool]:
        if not manager:
            raise KubeApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                               "value: is required for apply patch")
        if not isinstance(config, dict) or not config.get("apiVersion") or not config.get("kind"):
            raise KubeApiError(400, "BadRequest", "error decoding YAML: Object 'Kind' is missing in the applied "
                               "configuration")
        meta: Obj = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
        if meta.get("name") != name:
            raise KubeApiError(400, "BadRequest", f"the name of the object ({meta.get('name') or ''}) does not match "
                               f"the name on the URL ({name})")
        writes.check_namespace(rtype, namespace, config)
        applied = apply(old, config, manager, force=force)
        if old is not None:
            return self._admit_and_store(rtype, old, writes.merge_update(rtype, old, applied)), False
        ns = (namespace or "default") if rtype.namespaced else ""
        if rtype.namespaced:
            self._require_namespace(ns)
        writes.check_name(rtype, name)
        writes.new_metadata(rtype, applied, name, ns)
        return self._admit_and_store(rtype, None, applied), True

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        with self._lock:
            obj = self.get(rtype, namespace, name)
            if rtype.key == _NS:
                if name in _PROTECTED_NS:
                    raise KubeApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may '
                                       "not be deleted", {"name": name, "kind": "namespaces"})
                for rkey, store in builtins.list(self._objects.items()):
                    for (ons, oname) in [k for k in store if k[0] == name]:
                        self.remove(self.rtype(*rkey), ons, oname)
                obj["metadata"]["deletionTimestamp"] = kr.isotime()
                obj["status"] = {"phase": "Terminating"}
            self.remove(rtype, (namespace or "") if rtype.namespaced else "", name)
            return obj

    # -- helpers for the Host App, the service proxy and tests ---------------------------------------

    def review_access(self, verb: str, resource: str, group: str, namespace: str) -> bool:
        with self._lock:
            for rule in self.access_rules:
                if rule.matches(verb, resource, group, namespace):
                    return rule.allowed
        return False

