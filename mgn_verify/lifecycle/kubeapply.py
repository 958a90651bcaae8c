"""Create Kubernetes objects idempotently and wait for them to be ready, through the typed
``kubernetes`` client (imported lazily, through :mod:`mgn_verify.clients.kube`).

Each object is read first (``GET``) and created (``POST``) only when it is absent: an existing
object is left alone and reported ``unchanged`` (a 409 on create, someone else was faster, is
the same). Bodies and answers are plain JSON (``_preload_content=False``): the client still
validates every body against its models before sending, but a live object that a strict model
would reject (a CRD without ``status.conditions``) never breaks a read.

Readiness: a CRD is ``Established``, a Deployment has its replicas available, a StatefulSet
its replicas ready; other kinds are ready once they exist (``ready`` is None for them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ApiError, ClientError

if TYPE_CHECKING:
    from mgn_verify.clients.kube import KubeConnection

__all__ = ["KINDS", "ObjectState", "apply_objects", "collection_path", "item_path", "readiness", "wait_ready"]

Obj = dict[str, Any]

CREATED, UNCHANGED, WOULD_CREATE = "created", "unchanged", "would create"


@dataclass(frozen=True)
class Kind:
    """How the typed client reaches one kind: ``<api>.read_[namespaced_]<method>``."""

    api: str
    method: str
    plural: str
    namespaced: bool


KINDS: dict[str, Kind] = {
    "CustomResourceDefinition": Kind("ApiextensionsV1Api", "custom_resource_definition",
                                     "customresourcedefinitions", False),
    "Namespace": Kind("CoreV1Api", "namespace", "namespaces", False),
    "ServiceAccount": Kind("CoreV1Api", "service_account", "serviceaccounts", True),
    "Service": Kind("CoreV1Api", "service", "services", True),
    "ClusterRole": Kind("RbacAuthorizationV1Api", "cluster_role", "clusterroles", False),
    "ClusterRoleBinding": Kind("RbacAuthorizationV1Api", "cluster_role_binding", "clusterrolebindings", False),
    "Deployment": Kind("AppsV1Api", "deployment", "deployments", True),
    "StatefulSet": Kind("AppsV1Api", "stateful_set", "statefulsets", True),
}


@dataclass
class ObjectState:
    """One object as ``mgn install`` saw it: ``action`` created, unchanged or would create;
    ``ready`` None for a kind without a readiness notion; ``detail`` why it is not ready."""

    kind: str
    name: str
    namespace: str | None
    action: str
    ready: bool | None = None
    detail: str = ""

    @property
    def ref(self) -> str:
        """``Deployment guildnet-system/workspace-operator``: how messages name it."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "action": self.action,
                "ready": self.ready}


# -- paths (for --dry-run and messages) ---------------------------------------------------------


def _kind(obj: Obj) -> Kind:
    kind = KINDS.get(str(obj.get("kind")))
    if kind is None:
        raise ValueError(f"mgn install cannot apply a {obj.get('kind')!r}")
    return kind


def collection_path(obj: Obj) -> str:
    """Where a create is POSTed: ``/apis/apps/v1/namespaces/NS/deployments``."""
    kind = _kind(obj)
    version = str(obj["apiVersion"])
    prefix = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = obj["metadata"].get("namespace")
    scope = f"/namespaces/{namespace}" if kind.namespaced and namespace else ""
    return f"{prefix}{scope}/{kind.plural}"


def item_path(obj: Obj) -> str:
    return f"{collection_path(obj)}/{obj['metadata']['name']}"


def _state(obj: Obj, action: str) -> ObjectState:
    meta = obj["metadata"]
    return ObjectState(str(obj["kind"]), str(meta["name"]), meta.get("namespace"), action)


# -- requests ------------------------------------------------------------------------------------


def _call(conn: KubeConnection, obj: Obj, verb: str) -> Obj:
    """``read_…(name[, namespace])`` or ``create_…([namespace, ]body)`` answered as JSON."""
    from mgn_verify.clients import kube

    kind = _kind(obj)
    meta = obj["metadata"]
    scoped = (meta["namespace"],) if kind.namespaced else ()
    args: tuple[Any, ...] = (meta["name"], *scoped) if verb == "read" else (*scoped, obj)
    method = f"{verb}_namespaced_{kind.method}" if kind.namespaced else f"{verb}_{kind.method}"
    call = getattr(kube.api(conn, kind.api), method)
    response = kube.request(conn, call, *args, _preload_content=False)
    answer = json.loads(response.data or b"null")
    return answer if isinstance(answer, dict) else {}


def _doing(verb: str, state: ObjectState, exc: ClientError) -> ClientError:
    """``exc`` with the object it was about; ``ApiError`` keeps its status (callers test 404/409)."""
    message = f"{verb} {state.ref}: {exc}"
    if isinstance(exc, ApiError):
        return ApiError(message, component=exc.component, target=exc.target, status=exc.status, code=exc.code)
    return ClientError(message, component=exc.component, target=exc.target)


def read(conn: KubeConnection, obj: Obj) -> Obj | None:
    """The live object, or None when the API says 404."""
    try:
        return _call(conn, obj, "read")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise _doing("reading", _state(obj, ""), exc) from None
    except ClientError as exc:
        raise _doing("reading", _state(obj, ""), exc) from None


def create(conn: KubeConnection, obj: Obj) -> tuple[Obj, bool]:
    """``(live object, created)``: ``created`` is False when it already existed (409)."""
    try:
        return _call(conn, obj, "create"), True
    except ApiError as exc:
        if exc.status == 409:
            return read(conn, obj) or obj, False
        raise _doing("creating", _state(obj, ""), exc) from None
    except ClientError as exc:
        raise _doing("creating", _state(obj, ""), exc) from None


def apply_objects(conn: KubeConnection, objects: Sequence[Obj], *, dry_run: bool = False
                  ) -> tuple[list[ObjectState], dict[str, Obj]]:
    """GET each object, create the absent ones (none with ``dry_run``). Returns the states and
    the live objects by ``ref`` (the GET or POST answer: what readiness is judged on)."""
    states: list[ObjectState] = []
    live: dict[str, Obj] = {}
    for obj in objects:
        current = read(conn, obj)
        if current is not None:
            state = _state(obj, UNCHANGED)
        elif dry_run:
            state = _state(obj, WOULD_CREATE)
        else:
            current, made = create(conn, obj)
            state = _state(obj, CREATED if made else UNCHANGED)
        if current is not None:
            live[state.ref] = current
            state.ready, state.detail = readiness(current, state.kind)
        states.append(state)
    return states, live


# -- readiness -----------------------------------------------------------------------------------


def _condition(obj: Obj, ctype: str) -> Obj:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return {}


def _count(status: Obj, key: str) -> int:
    try:
        return int(status.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def readiness(obj: Obj, kind: str | None = None) -> tuple[bool | None, str]:
    """``(ready, why not)`` of the live object ``obj`` (of ``kind``, default its own);
    ``(None, "")`` for a kind that is ready once it exists."""
    kind = kind or str(obj.get("kind") or "")
    status = obj.get("status") or {}
    if kind == "CustomResourceDefinition":
        cond = _condition(obj, "Established")
        ok = cond.get("status") == "True"
        return ok, "" if ok else f"not Established ({cond.get('reason') or 'no condition yet'})"
    if kind not in ("Deployment", "StatefulSet"):
        return None, ""
    replicas = (obj.get("spec") or {}).get("replicas")
    want = 1 if replicas is None else _count(obj.get("spec") or {}, "replicas")
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is not None and status.get("observedGeneration") is not None \
            and _count(status, "observedGeneration") < _count(obj.get("metadata") or {}, "generation"):
        return False, "its controller has not observed the latest spec yet"
    key, word = ("availableReplicas", "available") if kind == "Deployment" else ("readyReplicas", "ready")
    have = _count(status, key)
    return have >= want, "" if have >= want else f"{have}/{want} replicas {word}"


def wait_ready(conn: KubeConnection, states: Sequence[ObjectState], objects: Sequence[Obj], timeout: float, *,
               poll: float = 0.5, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[ObjectState]:
    """Re-read every object that is not ready yet until all are or ``timeout`` seconds passed;
    ``states`` are updated in place. Returns those still not ready (empty: all ready)."""
    by_ref = {_state(obj, "").ref: obj for obj in objects}
    deadline = clock() + timeout
    while True:
        waiting = [s for s in states if s.ready is False]
        if not waiting:
            return []
        remaining = deadline - clock()
        if remaining <= 0:
            return waiting
        sleep(min(poll, remaining))
        for state in waiting:
            current = read(conn, by_ref[state.ref])
            if current is None:
                state.ready, state.detail = False, "it no longer exists"
            else:
                state.ready, state.detail = readiness(current, state.kind)
