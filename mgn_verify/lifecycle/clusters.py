"""Clusters through the Host App: find a record, read the §7 cluster template, plan and apply
it (idempotently), wait for a cluster to become usable.

The Host App keeps a cluster's record (``/api/deploy/clusters``) apart from its kubeconfig
credential: registering a name (``POST /api/deploy/clusters {name}``) stores no kubeconfig,
``?action=attach-kubeconfig`` stores one, ``/api/cluster/{id}/status`` says whether it is usable.
Namespace, ingress and the other per-cluster settings can only be changed by a settings PUT,
which shuts the Host App down: ``apply`` lists them in a warning and never sends them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import MgnVerifyError, UnavailableError, UnreachableError, UsageError

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import ClusterRecord, ClusterStatus, HostAppClient

__all__ = [
    "ClusterTemplate",
    "ClusterUnusable",
    "ClusterWaitTimeout",
    "Step",
    "apply_steps",
    "find_by_kubeconfig",
    "pick",
    "plan_apply",
    "read_kubeconfig",
    "require_usable",
    "resolve",
    "same_kubeconfig",
    "status_fix",
    "wait_usable",
]

#: The §7 cluster template's keys (cluster-minimal.yaml and cluster-production.yaml), plus
#: ``kubeconfig`` (a path, or the kubeconfig itself) which is ours.
_SECTIONS: dict[str, frozenset[str] | None] = {
    "name": None, "namespace": None, "image_pull_secret": None, "org_id": None, "kubeconfig": None,
    "settings": frozenset({"workspace_lb_enabled", "prefer_pod_proxy", "use_port_forward", "api_proxy_force_http"}),
    "ingress": frozenset({"domain", "class_name", "tls_secret", "cert_manager_issuer", "auth_url", "auth_signin"}),
    "tailscale": frozenset({"login_server", "routes", "hostname"}),
    "quotas": frozenset({"max_workspaces", "max_cpu", "max_memory"}),
}
_FIXES = {
    "attach_kubeconfig": "attach its kubeconfig: mgn cluster apply -f cluster.yaml --kubeconfig PATH",
    "check_cluster_network": "check that the Host App can reach the cluster's API server (network, VPN, proxy)",
}


class ClusterWaitTimeout(MgnVerifyError):
    """The cluster did not become usable within the timeout."""

    exit_code = 1

    def __init__(self, cluster: str, timeout: float, last: str) -> None:
        super().__init__(f"cluster {cluster!r} is not usable after {timeout:g} s ({last})")
        self.cluster = cluster
        self.last = last


class ClusterUnusable(UnavailableError):
    """The Host App answered, but cannot use the cluster's Kubernetes API: its ``404 not_found``
    and ``[]`` then say nothing about the workspace (§2.9.6). Exit 5, as any client error."""


def require_usable(api: HostAppClient, cluster_id: str, ref: str) -> None:
    """After a "not found" (or an empty list): raise :class:`ClusterUnusable` when
    ``/api/cluster/{id}/status`` says the Host App cannot use the cluster, so the user hears
    that rather than "not found"."""
    status = api.cluster_status(cluster_id)
    if status.ok:
        return
    if status.kubeconfig_present and status.kubeconfig_valid:
        why = f"the Host App cannot reach cluster {ref}'s Kubernetes API: {status.k8s_error or 'unreachable'}"
    else:
        why = f"the Host App cannot use cluster {ref}: it has no usable kubeconfig"
    raise ClusterUnusable(f"{api.redactor.text(why)}; fix: {status_fix(status)}", component="hostapp",
                          target=api.base_url, status=503, code=status.recommended_action or "k8s_unreachable")


@dataclass(frozen=True)
class ClusterTemplate:
    """The §7 ``cluster:`` template: what ``apply`` can act on (``name``, ``kubeconfig``) and
    the settings it cannot (``unsupported``: dotted keys, never their values)."""

    name: str
    kubeconfig: str | None = None
    unsupported: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "cluster.yaml") -> ClusterTemplate:
        if not isinstance(data, Mapping) or not isinstance(data.get("cluster"), Mapping):
            raise UsageError(f"{source}: a cluster template needs a top-level 'cluster:' mapping")
        cluster = data["cluster"]
        name = cluster.get("name")
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"{source}: cluster.name must be a non-empty string")
        unsupported: list[str] = []
        for key, value in cluster.items():
            if key not in _SECTIONS:
                raise UsageError(f"{source}: unknown key cluster.{key} (known: {', '.join(sorted(_SECTIONS))})")
            unsupported.extend(_unsupported(str(key), value, _SECTIONS[key], source))
        kubeconfig = cluster.get("kubeconfig")
        if kubeconfig is not None and (not isinstance(kubeconfig, str) or not kubeconfig.strip()):
            raise UsageError(f"{source}: cluster.kubeconfig must be a path (or the kubeconfig itself)")
        return cls(name.strip(), kubeconfig, tuple(unsupported), source)

    def kubeconfig_text(self) -> str | None:
        """The template's kubeconfig: inline, or read from its path (relative to the template)."""
        if self.kubeconfig is None:
            return None
        if "\n" in self.kubeconfig.strip():
            return self.kubeconfig
        path = Path(self.kubeconfig).expanduser()
        if not path.is_absolute() and self.source:
            path = Path(self.source).resolve().parent / path
        return read_kubeconfig(str(path), what="cluster.kubeconfig")

    def kubeconfig_path(self) -> str | None:
        if self.kubeconfig is None or "\n" in self.kubeconfig.strip():
            return None
        path = Path(self.kubeconfig).expanduser()
        if not path.is_absolute() and self.source:
            path = Path(self.source).resolve().parent / path
        return str(path)


def _unsupported(key: str, value: Any, fields: frozenset[str] | None, source: str) -> list[str]:
    """The keys set to something else than what the Host App does anyway (unset, false, the
    ``default`` namespace every per-cluster operation uses, §2.9.2)."""
    if key in ("name", "kubeconfig") or _default(value) or (key == "namespace" and value == "default"):
        return []
    if fields is None:
        return [f"cluster.{key}"]
    if not isinstance(value, Mapping):
        raise UsageError(f"{source}: cluster.{key} must be a mapping")
    for sub in value:
        if sub not in fields:
            raise UsageError(f"{source}: unknown key cluster.{key}.{sub} (known: {', '.join(sorted(fields))})")
    return [f"cluster.{key}.{sub}" for sub, v in value.items() if not _default(v)]


def _default(value: Any) -> bool:
    return value is None or value is False or value == "" or value == {}


# -- records ----------------------------------------------------------------------------------


def resolve(api: HostAppClient, ref: str) -> ClusterRecord | None:
    """The record ``ref`` names (:func:`~mgn_verify.clients.hostapp.cluster_matches`: the one with
    that id, else the one with that name), None when none has it; several of that name are a
    one-line :class:`UsageError` naming their ids (one GET)."""
    return pick(api.clusters(), ref)


def pick(records: Sequence[ClusterRecord], ref: str) -> ClusterRecord | None:
    """The record of ``records`` that ``ref`` names (id first, then name), None when none does;
    several of that name are a one-line :class:`UsageError` naming their ids."""
    from mgn_verify.clients.hostapp import cluster_matches

    found = cluster_matches(records, ref)
    if len(found) > 1:
        ids = ", ".join(r.id for r in found)
        raise UsageError(f"cluster {ref!r} is ambiguous: {len(found)} clusters of the Host App are named so ({ids}); "
                         "name one by its id")
    return found[0] if found else None


def find_by_kubeconfig(api: HostAppClient, kubeconfig: str) -> ClusterRecord | None:
    """The (oldest) record whose stored kubeconfig reaches the same API server with the same
    credentials: ``bootstrap`` without ``--name`` twice must not register the cluster twice.
    It pulls every stored kubeconfig: call it only once the gate passed."""
    records = sorted(api.clusters(), key=lambda r: r.created_at or "")
    for record in records:
        stored = api.cluster_kubeconfig(record.id)
        if stored is not None and same_kubeconfig(stored, kubeconfig):
            return record
    return None


def read_kubeconfig(path: str, *, what: str = "--kubeconfig") -> str:
    """The kubeconfig file's text (a one-line UsageError naming the option and the file)."""
    from .files import read_text

    text = read_text(path, what)
    if not text.strip():
        raise UsageError(f"{what} {path}: the file is empty")
    return text


def same_kubeconfig(a: str, b: str) -> bool:
    """Whether two kubeconfigs reach the same API server with the same credentials (a file
    path and embedded ``-data`` holding the same bytes count as the same)."""
    if a == b:
        return True
    return _identity(a) == _identity(b) != ()


def _identity(text: str) -> tuple[Any, ...]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return ()
    if not isinstance(data, Mapping):
        return ()
    context = _named(data.get("contexts"), data.get("current-context"), "context")
    cluster = _named(data.get("clusters"), context.get("cluster"), "cluster")
    user = _named(data.get("users"), context.get("user"), "user")
    if not cluster.get("server"):
        return ()
    return (cluster.get("server"), _blob(cluster, "certificate-authority"), cluster.get("insecure-skip-tls-verify"),
            user.get("token"), _blob(user, "client-certificate"), _blob(user, "client-key"),
            user.get("username"), user.get("password"), repr(user.get("exec")))


def _named(items: Any, name: Any, key: str) -> Mapping[str, Any]:
    entries = [e for e in items or [] if isinstance(e, Mapping)]
    entry = next((e for e in entries if e.get("name") == name), entries[0] if len(entries) == 1 else {})
    inner = entry.get(key) if isinstance(entry, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def _blob(section: Mapping[str, Any], key: str) -> bytes | None:
    data = section.get(f"{key}-data")
    if isinstance(data, str):
        try:
            return base64.b64decode(data)
        except ValueError:
            return data.encode()
    path = section.get(key)
    if isinstance(path, str):
        try:
            return Path(path).expanduser().read_bytes()
        except OSError:
            return path.encode()
    return None


# -- apply ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One mutating request ``apply`` will send; ``body`` as sent (redact before printing)."""

    method: str
    path: str
    body: dict[str, Any]
    what: str


@dataclass
class ApplyPlan:
    name: str
    cluster_id: str | None  # None until registered
    steps: list[Step] = field(default_factory=list)


def plan_apply(api: HostAppClient, name: str, kubeconfig: str | None) -> ApplyPlan:
    """What makes the Host App hold cluster ``name`` with ``kubeconfig`` (reads only)."""
    record = resolve(api, name)
    plan = ApplyPlan(name, record.id if record else None)
    if record is None:
        plan.steps.append(Step("POST", "/api/deploy/clusters", {"name": name}, "register"))
    if kubeconfig is not None:
        stored = api.cluster_kubeconfig(record.id) if record is not None else None
        if stored is None or not same_kubeconfig(stored, kubeconfig):
            where = record.id if record is not None else "{id}"
            plan.steps.append(Step("POST", f"/api/deploy/clusters/{where}?action=attach-kubeconfig",
                                   {"kubeconfig": kubeconfig}, "attach kubeconfig"))
    return plan


def apply_steps(api: HostAppClient, plan: ApplyPlan) -> str:
    """Send the plan's requests; returns the cluster id."""
    cluster_id = plan.cluster_id
    for step in plan.steps:
        if step.what == "register":
            cluster_id = api.register_cluster(plan.name)
        elif step.what == "attach kubeconfig":
            assert cluster_id is not None
            api.attach_kubeconfig(cluster_id, step.body["kubeconfig"])
    assert cluster_id is not None
    return cluster_id


def status_fix(status: ClusterStatus) -> str:
    """What to do about an unusable cluster, from its ``recommendedAction``."""
    action = status.recommended_action or ""
    return _FIXES.get(action, action or "check the cluster's kubeconfig and network")


def wait_usable(api: HostAppClient, cluster_id: str, timeout: float, *, interval: float = 2.0,
                on_poll: Callable[[ClusterStatus], None] | None = None) -> ClusterStatus:
    """Poll ``/status`` until kubeconfigPresent, kubeconfigValid and k8sReachable."""
    deadline = time.monotonic() + max(0.0, timeout)
    last = "no answer yet"
    while True:
        try:
            status = api.cluster_status(cluster_id)
        except UnreachableError as exc:
            last = f"the Host App did not answer: {exc}"
        else:
            if on_poll is not None:
                on_poll(status)
            if status.ok:
                return status
            last = status.k8s_error or status.recommended_action or "not usable"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ClusterWaitTimeout(cluster_id, timeout, last)
        time.sleep(min(interval, remaining))
