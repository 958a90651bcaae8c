"""Pure steps of the write path of the Kubernetes simulator's store: object names, server-set
metadata on create and update, what a PUT/PATCH may change, and the no-op test."""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType, prune_workspace_spec

__all__ = ["STATUS_SUBRESOURCE", "bump_generation", "check_name", "check_namespace", "has_status", "merge_update",
           "new_metadata", "prepare_workspace", "same_object", "user_agent_manager"]

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_RBAC = "rbac.authorization.k8s.io"
#: Kinds whose ``status`` only the /status subresource writes (PUT/PATCH of the object keep it).
STATUS_SUBRESOURCE = frozenset({("", "namespaces"), ("", "nodes"), ("", "pods"), ("", "services"),
                                ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                                ("apps", "replicasets"), ("apiextensions.k8s.io", "customresourcedefinitions")})
#: Kinds whose registry keeps ``metadata.generation`` (custom resources too); the others have none.
_GENERATION = frozenset({("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                         ("apps", "replicasets"), ("apiextensions.k8s.io", "customresourcedefinitions")})


def has_status(rtype: ResourceType) -> bool:
    """``status`` is a subresource: the built-in kinds that have one, and custom resources whose
    CRD declares it (elsewhere a write of the object sets ``status`` and ``/status`` is a 404)."""
    return rtype.key in STATUS_SUBRESOURCE or rtype.status_subresource


def user_agent_manager(user_agent: str) -> str:
    """The field manager of a non-apply write without ``fieldManager``: the User-Agent up to '/'."""
    return user_agent.split("/", 1)[0] or "unknown"


def check_name(rtype: ResourceType, name: str) -> None:
    """RBAC objects take any path-segment name (``system:...``); the rest DNS-1123 subdomains."""
    if rtype.group == _RBAC:
        ok = bool(name) and name not in (".", "..") and not any(c in name for c in "/%")
    else:
        ok = bool(name) and len(name) <= 253 and bool(_DNS1123.match(name))
    if not ok:
        raise KubeApiError.invalid(rtype.kind, rtype.group, name, [(
            "metadata.name", "FieldValueInvalid",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character")])


def check_namespace(rtype: ResourceType, namespace: str | None, body: Any) -> None:
    """``rest.EnsureObjectNamespaceMatchesRequestNamespace``: a namespaced object's own
    namespace, when it names one, is the URL's (cluster-scoped ones simply lose theirs)."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    given = meta.get("namespace") if isinstance(meta, dict) else None
    if rtype.namespaced and given and namespace and given != namespace:
        raise KubeApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")


def prepare_workspace(name: str, obj: Obj) -> None:
    """The Workspace CRD's pruning and its one required field (guildnet-host-app.md §3.1)."""
    obj["spec"] = prune_workspace_spec(obj.get("spec"))
    obj.pop("status", None)  # status is a subresource: ignored on create
    if not obj["spec"].get("image"):
        raise KubeApiError.invalid("Workspace", "guildnet.io", name, [
            ("spec.image", "FieldValueRequired", "Required value")])


def new_metadata(rtype: ResourceType, obj: Obj, name: str, ns: str) -> None:
    m = obj["metadata"]
    m.update(name=name, uid=kr.fake_uid(rtype.plural, ns, name, secrets.token_hex(4)), creationTimestamp=kr.isotime())
    if rtype.key in _GENERATION or rtype.custom:
        m["generation"] = 1
    else:
        m.pop("generation", None)
    m.pop("generateName", None)
    m.pop("resourceVersion", None)
    if rtype.namespaced:
        m["namespace"] = ns
    else:
        m.pop("namespace", None)


def merge_update(rtype: ResourceType, old: Obj, new: Any, *, status_only: bool = False) -> Obj:
    """``new`` as the server stores it over ``old``: server-set metadata kept, ``status`` kept
    (or, for a /status write, only ``status`` taken)."""
    if not isinstance(new, dict):
        raise KubeApiError(400, "BadRequest", "the object provided is unrecognized")
    if status_only:
        out = copy.deepcopy(old)
        out["status"] = copy.deepcopy(new.get("status"))
        return out
    out = copy.deepcopy(new)
    meta = out.setdefault("metadata", {})
    for key in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
        if key in old["metadata"]:
            meta[key] = old["metadata"][key]
        else:
            meta.pop(key, None)
    meta.pop("resourceVersion", None)
    out["apiVersion"], out["kind"] = old.get("apiVersion", rtype.group_version), old.get("kind", rtype.kind)
    if has_status(rtype):
        if "status" in old:
            out["status"] = copy.deepcopy(old["status"])
        else:
            out.pop("status", None)
    return out


def bump_generation(old: Obj, new: Obj) -> None:
    """A change of anything but metadata and status is a new ``generation`` (after defaulting)."""
    content = {k: v for k, v in new.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    before = {k: v for k, v in old.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    if content != before and "generation" in old["metadata"]:
        new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1


def _without_times(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    meta.pop("resourceVersion", None)
    for entry in meta.get("managedFields") or []:
        entry.pop("time", None)
    return out


def same_object(a: Obj, b: Obj) -> bool:
    """No change worth a new resourceVersion (managedFields timestamps aside), as the server's
    no-op detection decides."""
    return _without_times(a) == _without_times(b)
