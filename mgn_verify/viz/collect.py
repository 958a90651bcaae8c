"""One snapshot of every cluster for ``mgn viz``: the Host App's health, each cluster's record,
``/status`` and workspaces (through the Host App), and its nodes (through the cluster's own
kubeconfig: the Host App has no route for them).

Nothing here raises for a component that is down: each part of a snapshot carries either its
data or the one-line error that replaced it, so the dashboard shows the failure in place. The
strings are raw; the screens redact them (``config.redactor``) before showing anything.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ClientError, MgnVerifyError

if TYPE_CHECKING:
    from ..clients.hostapp import ClusterStatus, HealthEntry, HostAppClient
    from ..clients.kube import KubeConnection
    from ..config import Config

__all__ = ["ClusterView", "Collector", "HostAppView", "NodeView", "Snapshot", "WorkspaceView"]

T = TypeVar("T")
#: A cluster's record state when the Host App could not be asked.
UNKNOWN = "?"
#: A dashboard must not hang on a dead component: answers slower than this are failures.
_MAX_TIMEOUT = 5.0
#: Workspaces whose phase is asked for one by one (each is a request); the rest show the list's status.
_PHASES_PER_CLUSTER = 12
_NODE_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    version: str
    roles: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkspaceView:
    """``status`` is the Host App's (running, pending, failed); ``phase`` the CR's (None: not
    reconciled yet, or not asked)."""

    name: str
    image: str
    status: str
    phase: str | None


@dataclass(frozen=True)
class ClusterView:
    id: str
    name: str
    state: str  # the Host App record's (imported, ready...), "" when it has no record, "?" when not asked
    health: HealthEntry | None = None
    status: ClusterStatus | None = None
    status_error: str | None = None
    nodes: tuple[NodeView, ...] | None = None
    nodes_error: str | None = None
    workspaces: tuple[WorkspaceView, ...] | None = None
    workspaces_error: str | None = None

    def problems(self) -> list[str]:
        """What is wrong with the cluster, one short phrase each (empty: healthy)."""
        found: list[str] = []
        if self.health is not None and not self.health.ok:
            code = f" ({self.health.code})" if self.health.code else ""
            found.append(f"Host App health {self.health.status}{code}")
        if self.status_error:
            found.append("status unknown")
        elif self.status is not None and not self.status.ok:
            found.append("Kubernetes unreachable" if self.status.kubeconfig_present else "no kubeconfig")
        if self.nodes_error:
            found.append("nodes unknown")
        elif self.nodes is not None:
            found.extend(f"node {n.name} not ready" for n in self.nodes if not n.ready)
        found.extend(f"workspace {w.name} failed" for w in self.workspaces or () if w.status == "failed")
        return found


@dataclass(frozen=True)
class HostAppView:
    url: str
    ok: bool
    error: str | None = None
    headscale: tuple[HealthEntry, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    hostapp: HostAppView
    clusters: tuple[ClusterView, ...]
    #: ``--cluster`` values that named no cluster.
    unmatched: tuple[str, ...] = ()
    #: An unexpected failure of the collection itself (one line).
    error: str | None = None


def _line(exc: BaseException) -> str:
    """An exception as one line (our errors already are; others get their type name)."""
    text = str(exc) if isinstance(exc, MgnVerifyError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def _attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    try:
        return call(), None
    except Exception as exc:  # a dashboard shows every failure in place, whatever it is
        return None, _line(exc)


def _each(call: Callable[[str], T], items: Sequence[str]) -> list[T]:
    """``call`` for every item, side by side, on daemon threads: the process may end while a
    request hangs (an executor's workers would be joined at exit, holding ``q`` up)."""
    out: dict[int, T] = {}

    def one(index: int, item: str) -> None:
        out[index] = call(item)

    threads = [threading.Thread(target=one, args=(i, item), name="mgn-viz-cluster", daemon=True)
               for i, item in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [out[i] for i in range(len(items))]


def node_view(node: dict[str, Any]) -> NodeView:
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    ready = (conditions.get("Ready") or {}).get("status") == "True"
    problems = [] if ready else [f"Ready={(conditions.get('Ready') or {}).get('status', 'missing')}"]
    problems += [ctype for ctype in _NODE_PRESSURE if (conditions.get(ctype) or {}).get("status") == "True"]
    if (node.get("spec") or {}).get("unschedulable"):
        problems.append("cordoned")
    roles = sorted(key.rsplit("/", 1)[1] for key in (metadata.get("labels") or {})
                   if key.startswith("node-role.kubernetes.io/"))
    version = str((status.get("nodeInfo") or {}).get("kubeletVersion") or "")
    return NodeView(str(metadata.get("name") or "?"), ready, version, ",".join(roles) or "-", tuple(problems))


class Collector:
    """Gathers snapshots for ``config`` (its Host App client and kube connections are kept
    between snapshots; ``close()`` releases them). ``only``: cluster ids or names to show."""

    def __init__(self, config: Config, only: Sequence[str] = ()) -> None:
        self.config = config
        self.only = tuple(only)
        self._api: HostAppClient | None = None
        self._kube: dict[str, KubeConnection] = {}
        self._lock = threading.Lock()

    @property
    def timeout(self) -> float:
        return min(float(self.config["api.timeout"]), _MAX_TIMEOUT)

    def api(self) -> HostAppClient:
        if self._api is None:
            from ..clients.hostapp import HostAppClient

            # No retries: the next refresh is the retry, and a dead Host App must show at once.
            self._api = HostAppClient.from_config(self.config, timeout=self.timeout, retries=0)
        return self._api

    def close(self) -> None:
        from ..clients import kube

        if self._api is not None:
            self._api.close()
        with self._lock:
            conns, self._kube = list(self._kube.values()), {}
        for conn in conns:
            kube.close(conn)

    # -- the snapshot ---------------------------------------------------------------------------

    def collect(self) -> Snapshot:
        try:
            return self._collect()
        except Exception as exc:  # never a traceback on the screen: the snapshot says it
            return Snapshot(time.time(), HostAppView(self._url(), False), (), error=_line(exc))

    def _url(self) -> str:
        return str(self.config["api.base_url"])

    def _collect(self) -> Snapshot:
        api = self.api()
        _, down = _attempt(lambda: api.healthz(timeout=self.timeout))
        health, health_error = (None, down) if down else _attempt(lambda: api.health(timeout=self.timeout))
        records, _ = (None, down) if down else _attempt(lambda: api.clusters(timeout=self.timeout, retries=0))
        hostapp = HostAppView(self._url(), down is None and health_error is None, down or health_error,
                              health.headscale if health is not None else ())
        targets = self._targets([r.id for r in records or ()])
        names = {r.id: r for r in records or ()}
        ids = list(dict.fromkeys([*names, *targets]))
        wanted = [i for i in ids if not self.only or i in self.only or (i in names and names[i].name in self.only)]
        unmatched = tuple(o for o in self.only if o not in wanted and all(names[i].name != o for i in wanted
                                                                            if i in names))
        views = _each(lambda cid: self._cluster(cid, names.get(cid), health, hostapp.ok, targets.get(cid)), wanted)
        return Snapshot(time.time(), hostapp, tuple(views), unmatched)

    def _targets(self, discovered: list[str]) -> dict[str, Any]:
        """The configured clusters (with their kubeconfigs), by id; the Host App's added."""
        clusters: Any = importlib.import_module("mgn_verify.checks._clusters")
        try:
            found = clusters.cluster_targets(self.config, discovered)
        except MgnVerifyError:  # --cluster naming a cluster only the Host App knows: show what is
            found = []
        return {t.id: t for t in found}

    def _cluster(self, cluster_id: str, record: Any, health: Any, hostapp_up: bool, target: Any) -> ClusterView:
        api = self.api()
        status = status_error = None
        workspaces = workspaces_error = None
        if hostapp_up:
            status, status_error = _attempt(lambda: api.cluster_status(cluster_id))
            workspaces, workspaces_error = _attempt(lambda: self._workspaces(cluster_id))
        else:
            status_error = workspaces_error = "the Host App does not answer"
        nodes, nodes_error = _attempt(lambda: self._nodes(cluster_id, target))
        state = record.state if record is not None else ("" if hostapp_up else UNKNOWN)
        name = record.name if record is not None else cluster_id
        return ClusterView(cluster_id, name, state, health.cluster(cluster_id) if health else None,
                           status, status_error, nodes, nodes_error, workspaces, workspaces_error)

    def _workspaces(self, cluster_id: str) -> tuple[WorkspaceView, ...]:
        api = self.api()
        views = []
        for index, server in enumerate(api.servers(cluster_id)):
            phase = self._phase(cluster_id, server.name) if index < _PHASES_PER_CLUSTER else None
            views.append(WorkspaceView(server.name, server.image, server.status, phase))
        return tuple(views)

    def _phase(self, cluster_id: str, name: str) -> str | None:
        """The CR's ``status.phase`` (None: no status yet, or it could not be read)."""
        workspace, _ = _attempt(lambda: self.api().workspace(cluster_id, name))
        return workspace.phase if workspace is not None else None

    def _nodes(self, cluster_id: str, target: Any) -> tuple[NodeView, ...]:
        from ..clients import kube

        if target is None or target.origin in ("hostapp", "remote"):
            raise ClientError(f"no kubeconfig configured for cluster {cluster_id!r}", component="kubernetes",
                              target=cluster_id)
        conn = self._connection(cluster_id, target)
        response = kube.request(conn, kube.api(conn, "CoreV1Api").list_node, _preload_content=False, limit=500)
        items = (json.loads(response.data or b"null") or {}).get("items") or []
        return tuple(node_view(n) for n in items if isinstance(n, dict))

    def _connection(self, cluster_id: str, target: Any) -> KubeConnection:
        from ..clients import kube

        with self._lock:
            conn = self._kube.get(cluster_id)
        if conn is None:
            timeout = _MAX_TIMEOUT
            if "kubernetes.timeout" in self.config:  # registered by the kubernetes layer
                timeout = min(float(self.config["kubernetes.timeout"]), _MAX_TIMEOUT)
            conn = kube.load(target, config=self.config, timeout=timeout)
            with self._lock:
                self._kube[cluster_id] = conn
        return conn
