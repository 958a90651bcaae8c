"""The Host App's answers as typed values (guildnet-host-app.md §2.5-§2.9), split from
:mod:`mgn_verify.clients.hostapp`, which re-exports every name: import them from there.
Each ``parse`` takes the decoded JSON and never raises on a missing field (the Host App
omits empty ones): the field's empty value stands in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClusterRecord",
    "ClusterStatus",
    "DbHealth",
    "HealthEntry",
    "HealthReport",
    "LogLine",
    "ProxyAnswer",
    "Server",
    "ServerPort",
    "Workspace",
    "cluster_matches",
]


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """A record of ``GET /api/deploy/clusters``: ``state`` is creating, imported or ready."""

    id: str
    name: str
    state: str
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ClusterRecord:
        return cls(str(data.get("id") or ""), str(data.get("name") or ""), str(data.get("state") or ""),
                   _str(data, "createdAt"), _str(data, "updatedAt"))


def cluster_matches(records: Sequence[ClusterRecord], ref: str) -> list[ClusterRecord]:
    """The records ``ref`` names: the one with that id, else every one with that name. Each
    bootstrap makes a new UUID, so people name a cluster by its name; more than one match means
    the name is ambiguous (the Host App does not de-duplicate names)."""
    by_id = [r for r in records if r.id == ref]
    return by_id or [r for r in records if r.name == ref]


@dataclass(frozen=True, slots=True)
class HealthEntry:
    """One cluster or Headscale entry of ``/api/health``. ``status``: ok, error or unknown;
    ``code``: no_kubeconfig, cluster_unreachable, bad_kubeconfig (clusters only)."""

    id: str
    status: str
    name: str = ""
    code: str | None = None
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> HealthEntry:
        return cls(str(data.get("id") or ""), str(data.get("status") or "unknown"), str(data.get("name") or ""),
                   _str(data, "code"), _str(data, "error"), _str(data, "note"))


@dataclass(frozen=True, slots=True)
class HealthReport:
    """``GET /api/health``: every registered cluster and Headscale record, with its status."""

    clusters: tuple[HealthEntry, ...]
    headscale: tuple[HealthEntry, ...]

    def cluster(self, cluster_id: str) -> HealthEntry | None:
        return next((c for c in self.clusters if c.id == cluster_id), None)


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """``GET /api/cluster/{id}/status``. ``recommended_action``: attach_kubeconfig or
    check_cluster_network (None when all is well)."""

    cluster_id: str
    kubeconfig_present: bool
    kubeconfig_valid: bool
    k8s_reachable: bool
    pf_available: bool
    tsnet_available: bool
    k8s_error: str | None = None
    recommended_action: str | None = None
    last_checked: str | None = None

    @property
    def ok(self) -> bool:
        return self.kubeconfig_present and self.kubeconfig_valid and self.k8s_reachable

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ClusterStatus:
        return cls(str(data.get("clusterId") or ""), bool(data.get("kubeconfigPresent")),
                   bool(data.get("kubeconfigValid")), bool(data.get("k8sReachable")),
                   bool(data.get("pfAvailable")), bool(data.get("tsnetAvailable")), _str(data, "k8sError"),
                   _str(data, "recommendedAction"), _str(data, "lastChecked"))


@dataclass(frozen=True, slots=True)
class ServerPort:
    port: int
    name: str | None = None  # "<nil>" for an unnamed port: the Host App's own quirk, kept


@dataclass(frozen=True, slots=True)
class Server:
    """An element of ``GET /api/cluster/{id}/servers``. ``status``: running, pending, failed."""

    id: str
    name: str
    image: str
    status: str
    ports: tuple[ServerPort, ...] = ()

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Server:
        ports = tuple(ServerPort(int(p.get("port") or 0), _str(p, "name"))
                      for p in data.get("ports") or [] if isinstance(p, dict))
        return cls(str(data.get("id") or ""), str(data.get("name") or ""), str(data.get("image") or ""),
                   str(data.get("status") or ""), ports)


@dataclass(frozen=True, slots=True)
class DbHealth:
    """``GET /api/cluster/{id}/db/health``: ``status`` ok or unavailable, the discovered address."""

    status: str
    addr: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def parse(cls, data: dict[str, Any]) -> DbHealth:
        return cls(str(data.get("status") or ""), str(data.get("addr") or ""), _str(data, "error"))


@dataclass(frozen=True, slots=True)
class Workspace:
    """The raw Workspace custom resource of ``GET …/workspaces/{name}``. ``phase`` is None
    until the operator's first reconcile (a new CR has no ``status``)."""

    name: str
    phase: str | None
    ready_replicas: int
    raw: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Workspace:
        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        assert isinstance(status, dict)
        name = str((data.get("metadata") or {}).get("name") or "")
        return cls(name, _str(status, "phase"), int(status.get("readyReplicas") or 0), data)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of ``GET …/workspaces/{name}/logs``: ``t`` is the time the Host App read it
    (RFC 3339, not the line's own), ``msg`` is ``[<pod>] <line>``."""

    t: str
    msg: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> LogLine:
        return cls(str(data.get("t") or ""), str(data.get("msg") or ""))


@dataclass(frozen=True)
class ProxyAnswer:
    """What a workspace answered through ``…/proxy/server/{svc}/{path}``, whatever its status.
    It unpacks as ``(status, text)``; ``headers`` are the response's (names lower-case)."""

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # a cookie is no one's business

    def __iter__(self) -> Iterator[Any]:
        return iter((self.status, self.text))

    @property
    def ok(self) -> bool:
        """2xx or 3xx: what GuildNet's verify-workspace.sh counts as reached (it accepts 302)."""
        return 200 <= self.status < 400
