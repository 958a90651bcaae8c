"""Workspaces through the Host App: the spec a user writes, create, wait, view, test, delete.

Used by ``mgn workspace …`` and by ``mgn federation deploy`` (one workspace, many clusters)::

    spec = WorkspaceSpec.from_template(yaml.safe_load(text))     # the §7 ``workspace:`` template
    create(api, "lab", spec)                                     # WorkspaceExists if present
    view_ = wait_ready(api, "lab", spec.name, 300, on_poll=print) # WaitTimeout on timeout

The real field of a workspace's state is ``.status.phase`` (Pending, Running, Terminating; a new
CR has no ``status`` at all) with ``.status.readyReplicas`` (omitted while 0): the peer CLI read
the top-level ``status`` mapping as a string, so its ``wait`` always timed out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ConflictError, MgnVerifyError, ServerError, UnreachableError, UsageError

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import HostAppClient, Server

__all__ = [
    "WaitTimeout",
    "WorkspaceExists",
    "WorkspaceMissing",
    "WorkspacePort",
    "WorkspaceSpec",
    "create",
    "delete",
    "http_check",
    "is_ready",
    "poll_delays",
    "server_row",
    "view",
    "wait_ready",
]

#: The operator names the workspace's Service after it: an RFC 1035 label (what Kubernetes
#: requires of a Service name), else the Host App answers a bare 500 after the preflight.
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_TEMPLATE_KEYS = frozenset({"name", "image", "env", "ports", "args", "resources", "labels", "notes"})


class WorkspaceExists(ConflictError):
    """A workspace of that name already exists on the cluster (no create was sent, or the
    Host App refused it as ``AlreadyExists``). A negative outcome: exit code 1."""

    exit_code = 1

    def __init__(self, cluster: str, name: str) -> None:
        super().__init__(f"workspace {name!r} already exists on cluster {cluster!r}", component="hostapp",
                         status=409, code="already_exists")
        self.cluster = cluster
        self.name = name


class WaitTimeout(MgnVerifyError):
    """The workspace was not Running with a ready replica within the timeout."""

    exit_code = 1

    def __init__(self, cluster: str, name: str, timeout: float, last_phase: str) -> None:
        super().__init__(f"workspace {name!r} on cluster {cluster!r} is not ready after {timeout:g} s "
                         f"(last phase: {last_phase})")
        self.cluster = cluster
        self.name = name
        self.timeout = timeout
        self.last_phase = last_phase


class WorkspaceMissing(MgnVerifyError):
    """``wait``: the workspace was not found for ``after`` seconds on end (as ``kubectl wait``
    fails on a missing object, rather than polling until the timeout)."""

    exit_code = 1

    def __init__(self, cluster: str, name: str, after: float) -> None:
        super().__init__(f"workspace {name!r} not found on cluster {cluster!r} (still not there after {after:g} s)")
        self.cluster, self.name, self.after = cluster, name, after


# -- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspacePort:
    container_port: int
    name: str | None = None
    protocol: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"containerPort": self.container_port}
        if self.name:
            out["name"] = self.name
        if self.protocol:
            out["protocol"] = self.protocol
        return out


@dataclass(frozen=True)
class WorkspaceSpec:
    """What to create. ``env``: ``(name, value)`` pairs (or ``"K=V"`` strings, or a mapping);
    ``ports``: :class:`WorkspacePort`, ints, or ``{containerPort, name, protocol}`` mappings;
    ``labels``: pairs or a mapping. Everything is normalised (and checked) on construction."""

    name: str
    image: str
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[WorkspacePort, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    resources: Mapping[str, Any] | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise UsageError("workspace name: a non-empty string is required")
        if not _DNS_LABEL.fullmatch(self.name):
            raise UsageError(f"workspace name {self.name!r}: not a DNS label (lowercase letters, digits and '-', "
                             "starting with a letter, ending with a letter or digit, at most 63 characters): "
                             "the operator names the workspace's Service after it")
        if not isinstance(self.image, str) or not self.image.strip():
            raise UsageError("workspace image: a non-empty string is required")
        object.__setattr__(self, "env", _pairs(self.env, "env"))
        object.__setattr__(self, "labels", _pairs(self.labels, "labels"))
        object.__setattr__(self, "ports", tuple(_port(p, f"ports[{i}]") for i, p in enumerate(self.ports)))
        args: Any = self.args  # whatever a caller passed: checked here
        if isinstance(args, str) or not all(isinstance(a, str | int | float) for a in args):
            raise UsageError("workspace args: a list of strings is expected")
        object.__setattr__(self, "args", tuple(str(a) for a in args))
        if self.resources is not None and not isinstance(self.resources, Mapping):
            raise UsageError("workspace resources: a mapping (requests, limits) is expected")
        if not isinstance(self.notes, str):
            raise UsageError("workspace notes: a string is expected")

    @classmethod
    def from_template(cls, mapping: Mapping[str, Any]) -> WorkspaceSpec:
        """From the §7 ``workspace:`` mapping (or a whole template document holding one)."""
        if not isinstance(mapping, Mapping):
            raise UsageError("workspace template: a mapping is expected")
        if set(mapping) == {"workspace"}:
            mapping = mapping["workspace"]
            if not isinstance(mapping, Mapping):
                raise UsageError("workspace template: 'workspace' must be a mapping")
        unknown = sorted(str(k) for k in mapping if k not in _TEMPLATE_KEYS)
        if unknown:
            raise UsageError(f"workspace template: unknown key workspace.{unknown[0]} "
                             f"(known: {', '.join(sorted(_TEMPLATE_KEYS))})")
        for key in ("name", "image"):
            if not isinstance(mapping.get(key), str) or not str(mapping.get(key)).strip():
                raise UsageError(f"workspace template: workspace.{key} must be a non-empty string")
        return cls(name=mapping["name"], image=mapping["image"], env=_template_env(mapping.get("env")),
                   ports=_template_list(mapping.get("ports"), "ports"),
                   labels=_template_mapping(mapping.get("labels"), "labels"),
                   args=_template_list(mapping.get("args"), "args"),
                   resources=_template_resources(mapping.get("resources")),
                   notes=_template_notes(mapping.get("notes")))

    def body(self) -> dict[str, Any]:
        """The ``POST /api/cluster/{id}/workspaces`` body as the Host App reads it: ``env``
        ``[{name, value}]``, ``ports`` ``[{containerPort, name?, protocol?}]``, ``labels`` a map
        (``notes`` is not read by the create route, so it is not sent)."""
        out: dict[str, Any] = {"name": self.name, "image": self.image,
                               "env": [{"name": k, "value": v} for k, v in self.env],
                               "ports": [p.body() for p in self.ports]}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.args:
            out["args"] = list(self.args)
        if self.resources:
            out["resources"] = _plain(self.resources)
        return out


def _pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        value = list(value.items())
    out: list[tuple[str, str]] = []
    for item in value or ():
        if isinstance(item, str):
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise UsageError(f"workspace {what}: {item!r} is not KEY=VALUE")
            out.append((key, val))
        elif isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str) and item[0]:
            out.append((item[0], _scalar(item[1], f"{what}.{item[0]}")))
        else:
            raise UsageError(f"workspace {what}: {item!r} is not a (name, value) pair")
    return tuple(out)


def _scalar(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise UsageError(f"workspace {what}: a string value is expected, got {type(value).__name__}")


def _port(value: Any, what: str) -> WorkspacePort:
    if isinstance(value, WorkspacePort):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in ("containerPort", "name", "protocol"))
        if unknown:
            raise UsageError(f"workspace template: unknown key workspace.{what}.{unknown[0]}")
        number, name, protocol = value.get("containerPort"), value.get("name"), value.get("protocol")
        if name is not None and not isinstance(name, str):
            raise UsageError(f"workspace template: workspace.{what}.name must be a string")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            raise UsageError(f"workspace template: workspace.{what}.protocol must be TCP, UDP or SCTP")
        return WorkspacePort(_port_number(number, f"workspace.{what}.containerPort"), name, protocol)
    return WorkspacePort(_port_number(value, f"workspace.{what}"))


def _port_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() \
            or not 1 <= int(value) <= 65535:
        raise UsageError(f"workspace template: {what} must be a port number (1-65535), got {value!r}")
    return int(value)


def _template_env(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return _pairs(value, "env")
    if not isinstance(value, list):
        raise UsageError("workspace template: workspace.env must be a list of {name, value}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item.get("name") \
                or set(item) - {"name", "value"}:
            raise UsageError(f"workspace template: workspace.env[{i}] must be {{name, value}}")
        out.append((str(item["name"]), _scalar(item.get("value"), f"env[{i}].value")))
    return tuple(out)


def _template_list(value: Any, key: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"workspace template: workspace.{key} must be a list")
    return tuple(value)


def _template_mapping(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UsageError(f"workspace template: workspace.{key} must be a mapping")
    return tuple((str(k), _scalar(v, f"{key}.{k}")) for k, v in value.items())


def _template_resources(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"requests", "limits"} \
            or not all(isinstance(v, Mapping) for v in value.values()):
        raise UsageError("workspace template: workspace.resources must be {requests: {...}, limits: {...}}")
    return value


def _template_notes(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError("workspace template: workspace.notes must be a string")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- operations -------------------------------------------------------------------------------


def create(api: HostAppClient, cluster: str, spec: WorkspaceSpec) -> str:
    """Create the workspace (``202 pending``); returns ``"created"``. Raises
    :class:`WorkspaceExists`, having sent nothing, when one of that name is already there."""
    try:  # the client looks the name up first and sends nothing when it exists
        api.create_workspace(cluster, spec.body())
    except ConflictError:
        raise WorkspaceExists(cluster, spec.name) from None
    except ServerError as exc:  # created by someone else between the check and the POST
        if exc.reason == "AlreadyExists":
            raise WorkspaceExists(cluster, spec.name) from None
        raise
    return "created"


def delete(api: HostAppClient, cluster: str, name: str) -> bool:
    """Delete it; False when the Host App says it is not there."""
    return bool(api.delete_workspace(cluster, name))


def view(cluster: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The workspace as ``workspace get`` shows it: the peer CLI's ``"status":"Running"`` at
    the top (``.status.phase``, ``Pending`` before the first reconcile) plus the raw CR."""
    status = resource.get("status") if isinstance(resource.get("status"), Mapping) else {}
    spec = resource.get("spec") if isinstance(resource.get("spec"), Mapping) else {}
    meta = resource.get("metadata") if isinstance(resource.get("metadata"), Mapping) else {}
    assert isinstance(status, Mapping) and isinstance(spec, Mapping) and isinstance(meta, Mapping)
    name = str(meta.get("name") or "")
    phase = status.get("phase")
    return {
        "id": name,
        "name": name,
        "cluster": cluster,
        "image": spec.get("image"),
        "status": str(phase) if phase else "Pending",
        "phase": phase,
        "readyReplicas": int(status.get("readyReplicas") or 0),
        "ports": [p for p in spec.get("ports") or [] if isinstance(p, Mapping)],
        "serviceDNS": status.get("serviceDNS"),
        "serviceIP": status.get("serviceIP"),
        "proxyTarget": status.get("proxyTarget"),
        "resource": dict(resource),
    }


def server_row(server: Server) -> dict[str, Any]:
    """A ``/servers`` entry as ``workspace list`` shows it: ``status`` is the Host App's own
    word (running = Running with a ready replica, pending, failed), kept for scripts; ``state``
    is the same word as ``get`` prints (Running, Pending, Failed). An unnamed port's name is
    null (the Host App says ``"<nil>"``, Go's rendering of a nil pointer)."""
    return {"id": server.id, "name": server.name, "image": server.image, "status": server.status,
            "state": server.status.capitalize() if server.status else "Unknown",
            "ports": [{"name": None if p.name in (None, "", "<nil>") else p.name, "port": p.port}
                      for p in server.ports]}


def is_ready(workspace_view: Mapping[str, Any]) -> bool:
    """Running with at least one ready replica."""
    return workspace_view.get("phase") == "Running" and int(workspace_view.get("readyReplicas") or 0) > 0


def poll_delays(interval: float) -> Iterator[float]:
    """The sleeps between polls: quick at first (0.25 s, doubling) up to ``interval``, so a
    workspace that is Running within a second is seen within a second, then every ``interval``."""
    delay = min(0.25, interval)
    while True:
        yield delay
        delay = min(delay * 2, interval)


def wait_ready(api: HostAppClient, cluster: str, name: str, timeout: float, *, interval: float = 2.0,
               on_poll: Callable[[dict[str, Any] | None], None] | None = None,
               missing_after: float | None = None) -> dict[str, Any]:
    """Poll until the workspace is Running with a ready replica; returns its :func:`view`.

    ``on_poll`` gets each view (None while the Host App does not find it). The timeout is
    honoured (the last sleep is cut short); a Host App that does not answer for a moment is
    waited out. Raises :class:`WaitTimeout` naming the last phase seen, or, when the last poll
    got no answer from the Host App, an ``UnreachableError`` (it is not known whether it is ready),
    or with ``missing_after``, :class:`WorkspaceMissing` once it was not found that long on end."""
    deadline = time.monotonic() + max(0.0, timeout)
    delays = poll_delays(interval)
    last, unreachable = "not found", None
    missing_since: float | None = time.monotonic()
    while True:
        try:
            resource = api.workspace_resource(cluster, name)
        except UnreachableError as exc:
            resource, unreachable = None, exc
        else:
            unreachable = None
            current = None if resource is None else view(cluster, resource)
            if on_poll is not None:
                on_poll(current)
            if current is not None:
                last, missing_since = str(current["phase"] or "no status yet"), None
                if is_ready(current):
                    return current
            else:
                last, missing_since = "not found", missing_since or time.monotonic()
                if missing_after is not None and time.monotonic() - missing_since >= missing_after:
                    raise WorkspaceMissing(cluster, name, missing_after)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if unreachable is not None:
                raise UnreachableError(f"workspace {name!r} on cluster {cluster!r} is not ready after {timeout:g} s "
                                       f"as far as is known: {unreachable}", component=unreachable.component,
                                       target=unreachable.target)
            raise WaitTimeout(cluster, name, timeout, last)
        time.sleep(min(next(delays), remaining))


def http_check(api: HostAppClient, cluster: str, name: str, path: str, expected: int, *,
               retries: int = 0, interval: float = 1.0) -> tuple[bool, str]:
    """GET ``path`` of the workspace through the Host App's proxy
    (``/api/cluster/{c}/proxy/server/{name}{path}``): ``(ok, one line)``. Tried ``1 + retries``
    times while it differs (a workspace that just became Running may not serve yet). Raises
    ``UnreachableError`` when the last try got no answer from the Host App at all."""
    path = path if path.startswith("/") else f"/{path}"
    line = ""
    for attempt in range(1 + max(0, retries)):
        if attempt:
            time.sleep(interval)
        try:
            status = api.proxy_get(cluster, name, path).status
        except UnreachableError:
            if attempt == max(0, retries):
                raise
            continue
        if status == expected:
            return True, f"ok   {path} -> HTTP {status}"
        line = f"FAIL {path} -> HTTP {status} (expected {expected})"
    return False, line


def env_pairs(items: Iterable[str], what: str) -> tuple[tuple[str, str], ...]:
    """``K=V`` command-line values as pairs (``what`` names the option in errors)."""
    return _pairs(list(items), what)
