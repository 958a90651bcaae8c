"""``mgn install``: put GuildNet on the cluster of the configured kubeconfig, then register that
cluster with the Host App.

The plan is a list of steps: one create per object of :mod:`.manifests` (each skipped when the
object exists), then ``POST /api/bootstrap`` (skipped when the Host App already has a cluster of
that name). :func:`run_install` carries it out and waits for readiness between the two;
``dry_run`` reads what exists and says what would be done, changing nothing.
"""

from __future__ import annotations

import base64
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgn_verify._exceptions import ConfigError, NotConfiguredError

from . import kubeapply
from .kubeapply import WOULD_CREATE, ObjectState
from .manifests import InstallSettings, install_objects

if TYPE_CHECKING:
    from mgn_verify.clients.kube import KubeConnection
    from mgn_verify.config import Config

    from .context import CommandContext

__all__ = ["DEFAULT_CLUSTER_NAME", "InstallResult", "Step", "cluster_name_for", "flatten_kubeconfig",
           "plan_steps", "run_install", "target_cluster"]

#: The peer CLI's default ``--cluster-name``.
DEFAULT_CLUSTER_NAME = "guildnet-cluster"
BOOTSTRAP_PATH = "/api/bootstrap"
REGISTERED, UNCHANGED = "registered", "unchanged"


@dataclass
class Step:
    """One request of the plan: ``action`` would create / unchanged (dry run) or what was done."""

    kind: str
    name: str
    namespace: str | None
    method: str
    path: str
    body: dict[str, Any] | None
    action: str = ""

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, "action": self.action,
                "method": self.method, "path": self.path, "body": self.body}


@dataclass
class InstallResult:
    """What ``mgn install`` did (or, with ``steps``, would do)."""

    objects: list[ObjectState]
    cluster_name: str
    cluster_id: str | None = None
    cluster_action: str = ""
    not_ready: list[ObjectState] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    dry_run: bool = False

    def data(self) -> dict[str, Any]:
        if self.dry_run:
            return {"dry_run": True, "steps": [s.data() for s in self.steps]}
        return {"objects": [o.data() for o in self.objects],
                "cluster": {"name": self.cluster_name, "id": self.cluster_id, "action": self.cluster_action or None}}


# -- the target cluster and its kubeconfig ----------------------------------------------------------


def target_cluster(ctx: CommandContext) -> Any:
    """The ``ClusterTarget`` install acts on (and its gate checks): the default cluster, else the
    first configured one with a kubeconfig."""
    clusters: Any = importlib.import_module("mgn_verify.checks._clusters")
    targets = clusters.cluster_targets(ctx.config, local_only=True)
    wanted = ctx.default_cluster()
    for target in targets:
        if target.id == wanted:
            return target
    if not targets:
        raise ConfigError("no cluster with a kubeconfig is configured: set kubernetes.kubeconfig or give "
                          "the clusters: entry a kubeconfig")
    return targets[0]


def connect(ctx: CommandContext) -> KubeConnection:
    """The Kubernetes connection of the default cluster (no request made yet). A missing or
    unusable kubeconfig is a configuration error (exit 2), not an API failure."""
    from mgn_verify.clients import kube

    config = ctx.config
    timeout = float(config["kubernetes.timeout"]) if "kubernetes.timeout" in config else 5.0
    try:
        return kube.load(target_cluster(ctx), config=config, timeout=timeout)
    except (NotConfiguredError, kube.KubeconfigError) as exc:
        raise ConfigError(str(exc)) from None


def _inline(entry: dict[str, Any], key: str, base: Path, config: Config, *, secret: bool = False) -> None:
    """``key: PATH`` → ``key-data: base64`` (as ``kubectl config view --flatten``)."""
    if not entry.get(key) or entry.get(f"{key}-data"):
        return
    path = Path(str(entry.pop(key))).expanduser()
    try:
        data = base64.b64encode((path if path.is_absolute() else base / path).read_bytes()).decode()
    except OSError as exc:
        raise ConfigError(f"kubeconfig {base}: cannot read {key} {path}: {exc.strerror or exc}") from None
    if secret:
        config.mark_secret(data)
    entry[f"{key}-data"] = data


def flatten_kubeconfig(conn: KubeConnection, config: Config) -> str:
    """The kubeconfig the connection was built from, minified to its context and with every
    file it names inlined: what the Host App stores for the cluster (it cannot read our files)."""
    import yaml

    data = yaml.safe_load(conn.path.read_text()) or {}

    def named(section: str, name: str) -> dict[str, Any]:
        for entry in data.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return dict(entry)
        return {"name": name, section[:-1]: {}}

    context = named("contexts", conn.context)
    inner = dict(context.get("context") or {})
    cluster = named("clusters", str(inner.get("cluster") or ""))
    user = named("users", str(inner.get("user") or ""))
    cluster["cluster"] = dict(cluster.get("cluster") or {})
    user["user"] = dict(user.get("user") or {})
    base = conn.path.parent
    _inline(cluster["cluster"], "certificate-authority", base, config)
    _inline(user["user"], "client-certificate", base, config)
    _inline(user["user"], "client-key", base, config, secret=True)
    out = {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [cluster],
           "contexts": [{**context, "context": inner}], "current-context": conn.context, "users": [user]}
    return str(yaml.safe_dump(out, sort_keys=False, default_flow_style=False))


def cluster_name_for(ctx: CommandContext, given: str | None) -> str:
    """``--cluster-name``, else the configured default cluster, else the peer's default."""
    return given or ctx.default_cluster() or DEFAULT_CLUSTER_NAME


# -- the plan ----------------------------------------------------------------------------------------


def plan_steps(objects: list[dict[str, Any]], cluster_name: str, kubeconfig_text: str) -> list[Step]:
    """Every request ``mgn install`` may send, in order (creates, then the bootstrap)."""
    steps = [Step(str(o["kind"]), str(o["metadata"]["name"]), o["metadata"].get("namespace"), "POST",
                  kubeapply.collection_path(o), o) for o in objects]
    body = {"cluster": {"kubeconfig": kubeconfig_text, "name": cluster_name}}
    steps.append(Step("Cluster", cluster_name, None, "POST", BOOTSTRAP_PATH, body))
    return steps


def redacted_bootstrap_body(cluster_name: str, conn: KubeConnection) -> dict[str, Any]:
    """The bootstrap body as a dry run shows it: the kubeconfig is a credential, never printed."""
    placeholder = f"<kubeconfig of context {conn.context!r}, server {conn.server} (credentials not shown)>"
    return {"cluster": {"kubeconfig": placeholder, "name": cluster_name}}


def _registered(ctx: CommandContext, name: str) -> str | None:
    """The id of the Host App's cluster ``name`` (an id, else a name), if any (several of that
    name: a usage error naming them, as every command)."""
    from .clusters import resolve

    with ctx.hostapp() as api:
        record = resolve(api, name)
        return None if record is None else record.id


def _bootstrap(ctx: CommandContext, kubeconfig_text: str, name: str) -> str:
    with ctx.hostapp() as api:
        return api.bootstrap(kubeconfig_text, name=name)


def run_install(ctx: CommandContext, cluster_name: str, *, dry_run: bool = False,
                progress: Any = None) -> InstallResult:
    """Apply, wait, register (see the module docs). ``progress(message)`` narrates on stderr."""
    say = progress or (lambda _message: None)
    config = ctx.config
    objects = install_objects(InstallSettings.from_config(config))
    conn = connect(ctx)
    try:
        say(f"{'dry run: would install' if dry_run else 'installing'} GuildNet onto {conn.describe()}")
        states, _ = kubeapply.apply_objects(conn, objects, dry_run=dry_run)
        if dry_run:
            return _dry_run_result(ctx, conn, objects, states, cluster_name)
        result = InstallResult(states, cluster_name)
        timeout = float(config["install.wait_timeout"])
        if any(s.ready is False for s in states):
            say(f"waiting up to {timeout:g}s for the CRDs, the operator and RethinkDB to be ready")
        result.not_ready = kubeapply.wait_ready(conn, states, objects, timeout)
        if result.not_ready:
            return result
        result.cluster_id = _registered(ctx, cluster_name)
        if result.cluster_id is not None:
            result.cluster_action = UNCHANGED
            return result
        say(f"registering the cluster with the Host App as {cluster_name!r}")
        result.cluster_id = _bootstrap(ctx, flatten_kubeconfig(conn, config), cluster_name)
        result.cluster_action = REGISTERED
        return result
    finally:
        from mgn_verify.clients import kube

        kube.close(conn)  # best effort, never raises


def _dry_run_result(ctx: CommandContext, conn: KubeConnection, objects: list[dict[str, Any]],
                    states: list[ObjectState], cluster_name: str) -> InstallResult:
    steps = plan_steps(objects, cluster_name, "")
    for step, obj, state in zip(steps, objects, states, strict=False):
        step.action = state.action
        if state.action != WOULD_CREATE:  # exists: only the GET is sent
            step.method, step.path, step.body = "GET", kubeapply.item_path(obj), None
    bootstrap = steps[-1]
    existing = _registered(ctx, cluster_name)
    if existing is not None:
        bootstrap.action = f"unchanged (already registered as {existing})"
        bootstrap.method, bootstrap.path, bootstrap.body = "GET", "/api/deploy/clusters", None
    else:
        bootstrap.action = "would register"
        bootstrap.body = redacted_bootstrap_body(cluster_name, conn)
    return InstallResult(states, cluster_name, cluster_id=existing, steps=steps, dry_run=True)
