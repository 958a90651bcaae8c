"""What the ``kubernetes`` layer's checks share: the per-run connection pool, raw JSON calls
through the real client, health endpoints, and small parsers.

Lists are read as JSON (``_preload_content=False``) rather than as the client's models: the
checks need a few fields, and a real cluster's object that a strict model rejects must not turn
a check into an error. The requests themselves are the real client's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from mgn_verify import Config
from mgn_verify._exceptions import ClientError, NotConfiguredError

from ._clusters import kubeconfig_candidates

if TYPE_CHECKING:
    from mgn_verify.clients.kube import KubeConnection

__all__ = [
    "LAYER",
    "NOT_CONFIGURED_HINT",
    "KubePool",
    "condition",
    "gib",
    "health",
    "in_parallel",
    "list_json",
    "names",
    "quantity",
    "reachable",
    "read_json",
]

LAYER = "kubernetes"
NOT_CONFIGURED_HINT = "set kubernetes.kubeconfig (or KUBECONFIG)"
T = TypeVar("T")

#: The requirement every check but ``kubernetes.config`` builds on (directly or not).
reachable = "kubernetes.api.reachable[{cluster}]"


class KubePool:
    """One connection per cluster for the whole run, created on first use; a failure is cached
    too, so twenty checks of a broken cluster cost one attempt (thread-safe)."""

    def __init__(self, config: Config, targets: Iterable[Any]) -> None:
        self._config = config
        self._targets = {t.id: t for t in targets}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._made: dict[str, KubeConnection | ClientError] = {}

    def configured(self, cluster: str) -> bool:
        """Whether a kubeconfig was named for the cluster, by a setting or by ``$KUBECONFIG``
        (a missing one is then a failure, never "not configured")."""
        target = self._targets.get(cluster)
        if target is None:
            return False
        return any(why != "default" for _, why in kubeconfig_candidates(target))

    def get(self, cluster: str) -> KubeConnection:
        """The cluster's connection (kubeconfig loaded, nothing asked of the server yet)."""
        with self._lock:
            lock = self._locks.setdefault(cluster, threading.Lock())
        with lock:
            if cluster not in self._made:
                self._made[cluster] = self._load(cluster)
            made = self._made[cluster]
        if isinstance(made, ClientError):
            raise made
        return made

    def _load(self, cluster: str) -> KubeConnection | ClientError:
        from mgn_verify.clients import kube

        target = self._targets.get(cluster)
        if target is None:
            return NotConfiguredError(f"cluster {cluster!r} is not known", component=LAYER, target=cluster)
        try:
            return kube.load(target, config=self._config, timeout=float(self._config["kubernetes.timeout"]))
        except ClientError as exc:
            return exc

    def close(self) -> None:
        from mgn_verify.clients import kube

        with self._lock:
            made, self._made = list(self._made.values()), {}
        for conn in made:
            if not isinstance(conn, ClientError):
                kube.close(conn)


def read_json(conn: KubeConnection, api_name: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """``kubernetes.client.<api_name>(...).<method>(*args, **kwargs)`` answered as JSON."""
    from mgn_verify.clients import kube

    call = getattr(kube.api(conn, api_name), method)
    response = kube.request(conn, call, *args, _preload_content=False, **kwargs)
    return json.loads(response.data or b"null")


def list_json(conn: KubeConnection, api_name: str, method: str, *args: Any, **kwargs: Any) -> list[Any]:
    """The ``items`` of a list call, every page (``limit``/``continue``) followed."""
    items: list[Any] = []
    token = ""
    while True:
        extra = {"_continue": token} if token else {}
        page = read_json(conn, api_name, method, *args, limit=500, **extra, **kwargs)
        items.extend(page.get("items") or [])
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return items


def health(conn: KubeConnection, path: str, query: list[tuple[str, str]] | None = None) -> tuple[int, str]:
    """``GET path`` (``/livez``, ``/readyz``) as (status, body); no generated API exists for it."""
    from mgn_verify.clients import kube

    api = conn.api_client

    def call(_request_timeout: float) -> tuple[int, str]:
        params = api.param_serialize("GET", path, query_params=query or [], auth_settings=["BearerToken"])
        response = api.call_api(*params, _request_timeout=_request_timeout)
        response.read()  # type: ignore[no-untyped-call]
        return int(response.status), bytes(response.data or b"").decode("utf-8", "replace")

    status, text = kube.request(conn, call)
    if status == 401:  # call_api returns non-2xx answers instead of raising
        raise kube.unauthorized(conn)
    return status, text


def in_parallel(calls: Iterable[Callable[[], T]], workers: int = 8) -> list[T]:
    """Run independent requests at once (results in order): a slow API costs one round trip."""
    todo = list(calls)
    if len(todo) <= 1:
        return [call() for call in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo)), thread_name_prefix="kube-check") as pool:
        return list(pool.map(lambda call: call(), todo))


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    """The status condition of type ``ctype`` (empty dict when absent)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def names(objs: Iterable[dict[str, Any]], *, namespaced: bool = False) -> list[str]:
    """``ns/name`` (or ``name``) of each object."""
    out = []
    for obj in objs:
        meta = obj.get("metadata") or {}
        out.append(f"{meta.get('namespace')}/{meta.get('name')}" if namespaced else str(meta.get("name")))
    return out


def quantity(value: object) -> Decimal:
    """A Kubernetes quantity (``3500m``, ``16Gi``, ``1e9``) as a number; unparsable → 0."""
    from kubernetes.utils import parse_quantity

    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return Decimal(0)


def gib(value: Decimal) -> float:
    return float(value / Decimal(1024**3))
