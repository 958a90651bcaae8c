"""Workspaces through the Host App: create, wait, view, test, delete (the spec: ``workspace_spec``).

Used by ``mgn workspace …`` and by ``mgn federation deploy`` (one workspace, many clusters)::

    spec = WorkspaceSpec.from_template(yaml.safe_load(text))     # the §7 ``workspace:`` template
    create(api, "lab", spec)                                     # WorkspaceExists if present
    view_ = wait_ready(api, "lab", spec.name, 300, on_poll=print) # WaitTimeout on timeout

The real field of a workspace's state is ``.status.phase`` (Pending, Running, Terminating; a new
CR has no ``status`` at all) with ``.status.readyReplicas`` (omitted while 0): the peer CLI read
the top-level ``status`` mapping as a string, so its ``wait`` always timed out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ApiError, ConflictError, MgnVerifyError, ServerError, UnreachableError

from .workspace_spec import WorkspacePort, WorkspaceSpec, env_pairs

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import HostAppClient, Server

__all__ = [
    "WaitTimeout",
    "WorkspaceExists",
    "WorkspaceMissing",
    "WorkspacePort",
    "WorkspaceSpec",
    "already_exists",
    "create",
    "delete",
    "env_pairs",
    "http_check",
    "is_ready",
    "poll_delays",
    "server_row",
    "view",
    "wait_ready",
]



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



def create(api: HostAppClient, cluster: str, spec: WorkspaceSpec) -> str:
    """Create the workspace (``202 pending``); returns ``"created"``. Raises
    :class:`WorkspaceExists`, having sent nothing, when one of that name is already there."""
    try:  # the client looks the name up first and sends nothing when it exists
        api.create_workspace(cluster, spec.body())
    except (ConflictError, ServerError) as exc:  # ServerError: created by someone else just now
        if already_exists(exc):
            raise WorkspaceExists(cluster, spec.name) from None
        raise
    return "created"


def already_exists(exc: ApiError) -> bool:
    """Whether the error says the object already exists: the client's ``already_exists``, or
    Kubernetes' ``AlreadyExists`` reason (a 500 from the Host App carries it too), or a bare 409.
    A 422 (invalid) or a 409 giving another reason (``Conflict``) is something else."""
    details = exc.details if isinstance(exc.details, dict) else {}
    reason = str(getattr(exc, "reason", "") or details.get("reason") or "")
    if exc.code == "already_exists" or reason == "AlreadyExists":
        return True
    return exc.status == 409 and not reason and exc.code in ("", "conflict")


def delete(api: HostAppClient, cluster: str, name: str) -> bool:
    """Delete it; False when it is not there (looked up first: nothing is sent then). Once it
    was there, a 404 to the DELETE means it is gone: the Host App answers it to a retried
    DELETE whose first attempt went through (a reset or a gateway's 502/504 lost the answer)."""
    if api.workspace_resource(cluster, name) is None:
        return False
    api.delete_workspace(cluster, name)
    return True


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
    ``UnreachableError`` when the last try got no answer from the Host App at all, and a
    ``TlsVerificationError`` at once (retrying cannot make a certificate verify)."""
    from mgn_verify.clients._http import TlsVerificationError

    path = path if path.startswith("/") else f"/{path}"
    line = ""
    for attempt in range(1 + max(0, retries)):
        if attempt:
            time.sleep(interval)
        try:
            status = api.proxy_get(cluster, name, path).status
        except TlsVerificationError:
            raise  # the certificate will not verify on the next try either
        except UnreachableError:
            if attempt == max(0, retries):
                raise
            continue
        if status == expected:
            return True, f"ok   {path} -> HTTP {status}"
        line = f"FAIL {path} -> HTTP {status} (expected {expected})"
    return False, line
