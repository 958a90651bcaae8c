"""Which GuildNet clusters a run verifies, and how a check is repeated once per cluster.

A cluster comes from the ``clusters`` setting (an id, or a mapping with its own kubeconfig and
RethinkDB), else it is ``defaults.cluster`` with the top-level ``kubernetes.*`` and
``rethinkdb.*`` settings; when the Host App answers, the clusters it lists are added
(``api.discover_clusters``). ``verify.clusters`` (``--cluster ID``) narrows the list.

Per-cluster checks are written once, without the cluster, and registered per cluster with
``per_cluster``: ids such as ``kubernetes.nodes.ready[prod-east]``, the cluster in ``target``,
and ``requires="kubernetes.api.reachable[{cluster}]"`` resolved per instance, so one broken
cluster blocks only its own checks.
"""

from __future__ import annotations

import os
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from mgn_verify import Config, ConfigError, UsageError, parametrize, skip
from mgn_verify._marks import MARKS_ATTR
from mgn_verify._text import did_you_mean

__all__ = [
    "GUILDNET_LAYERS",
    "ClusterTarget",
    "RethinkTarget",
    "cluster_targets",
    "configured_cluster_ids",
    "explicitly_selected",
    "local_cluster_checks",
    "local_cluster_targets",
    "not_found",
    "per_cluster",
    "register_per_cluster",
    "wants_discovery",
]

#: The layers whose checks are per cluster; discovery through the Host App is for them.
GUILDNET_LAYERS = ("kubernetes", "rethinkdb", "guildnet")
DEFAULT_CLUSTER_ID = "default"


@dataclass(frozen=True, slots=True)
class RethinkTarget:
    """Where a cluster's RethinkDB is: ``host`` empty means "find it through ``service``"."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    service: str
    namespace: str


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """One cluster to verify. ``origin`` says where it came from: ``config`` (the ``clusters``
    list), ``remote`` (listed there without a kubeconfig of its own), ``defaults`` (no list: the
    top-level settings) or ``hostapp`` (discovered)."""

    id: str
    kubeconfig: str | None
    context: str | None
    rethinkdb: RethinkTarget
    origin: str
    #: The setting that named ``kubeconfig`` (``clusters[1].kubeconfig``), for messages.
    kubeconfig_setting: str = "kubernetes.kubeconfig"

    @property
    def configured(self) -> bool:
        """Whether a kubeconfig was named for it (else the default locations are tried)."""
        return self.kubeconfig is not None


_RETHINK_KEYS = ("host", "port", "user", "password", "service", "namespace")


def _rethink(config: Config, overrides: dict[str, Any], *, inherit: bool = True, where: str = "rethinkdb"
             ) -> RethinkTarget:
    """The top-level ``rethinkdb.*`` settings (or, for a cluster that does not inherit them, their
    defaults) under the cluster's own ``overrides``."""
    # Keys spelled out (not config.section): `mgn verify explain` finds the settings a check reads.
    top = {"host": config["rethinkdb.host"], "port": config["rethinkdb.port"], "user": config["rethinkdb.user"],
           "password": config["rethinkdb.password"], "service": config["rethinkdb.service"],
           "namespace": config["rethinkdb.namespace"]}
    if not inherit:
        top = {key: _default(config, f"rethinkdb.{key}", value) for key, value in top.items()}
    merged = {**top, **overrides}
    try:
        port = int(merged.get("port") or 28015)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        source = _origin(config, "clusters" if where.startswith("clusters") else "rethinkdb.port")
        raise ConfigError(f"expected a port number (1-65535), got {merged.get('port')!r}", key=f"{where}.port",
                          source=source)
    return RethinkTarget(
        host=str(merged.get("host") or ""), port=port,
        user=str(merged.get("user") or "admin"), password=str(merged.get("password") or ""),
        service=str(merged.get("service") or "rethinkdb"), namespace=str(merged.get("namespace") or "default"),
    )


def _origin(config: Config, key: str) -> str:
    """Where a value came from, worded as the loader's own errors word it."""
    source = config.source(key)
    if source.startswith("file:"):
        return source[len("file:"):]
    if source.startswith("env:"):
        return f"environment {source[len('env:'):]}"
    return {"cli": "command line"}.get(source, source)


def _default(config: Config, key: str, fallback: Any) -> Any:
    setting = config.registry.get(key)
    return setting.default if setting is not None else fallback


def _from_entry(config: Config, entry: object, index: int, inherit: bool) -> ClusterTarget:
    """One ``clusters`` entry. Only the default cluster (the only entry, or the one named by
    ``defaults.cluster``) inherits the top-level ``kubernetes.*``/``rethinkdb.*`` settings: two
    clusters must never be checked through the same kubeconfig. Another entry without a
    kubeconfig of its own is verified through the Host App only (``guildnet`` layer)."""
    if isinstance(entry, str) and entry.strip():
        entry = {"id": entry.strip()}
    where = f"clusters[{index}]"
    if not isinstance(entry, dict) or not str(entry.get("id") or "").strip():
        raise ConfigError(f"must be an id or a mapping with an 'id', not {entry!r}", key=where,
                          source=_origin(config, "clusters"))
    rethinkdb = entry.get("rethinkdb") or {}
    if not isinstance(rethinkdb, dict):
        raise ConfigError("must be a mapping", key=f"{where}.rethinkdb", source=_origin(config, "clusters"))
    unknown = sorted(set(rethinkdb) - set(_RETHINK_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} (known: {', '.join(_RETHINK_KEYS)})",
                          key=f"{where}.rethinkdb", source=_origin(config, "clusters"))
    password = rethinkdb.get("password")
    if password is not None and not isinstance(password, str):  # never echo it: it is a secret
        raise ConfigError(f"expected a string, got {type(password).__name__}", key=f"{where}.rethinkdb.password",
                          source=_origin(config, "clusters"))
    if password:
        config.mark_secret(password)  # a per-cluster password is as secret as rethinkdb.password
    for key in ("kubeconfig", "context"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ConfigError(f"expected a string, got {type(entry[key]).__name__}", key=f"{where}.{key}",
                              source=_origin(config, "clusters"))
    extra = sorted(set(entry) - {"id", "kubeconfig", "context", "rethinkdb"})
    if extra:
        hint = did_you_mean(extra[0], ["kubeconfig", "context", "rethinkdb"])
        raise ConfigError(f"unknown key {extra[0]!r}{hint}", key=where, source=_origin(config, "clusters"))
    own = str(entry["kubeconfig"]) if entry.get("kubeconfig") else None
    kubeconfig = own or (config["kubernetes.kubeconfig"] if inherit else None)
    context = entry.get("context") or (config["kubernetes.context"] if inherit else None)
    return ClusterTarget(
        id=str(entry["id"]).strip(), kubeconfig=kubeconfig, context=str(context) if context else None,
        rethinkdb=_rethink(config, rethinkdb, inherit=inherit, where=f"{where}.rethinkdb"),
        origin="config" if (own or inherit) else "remote",
        kubeconfig_setting=f"{where}.kubeconfig" if own else "kubernetes.kubeconfig",
    )


def cluster_targets(config: Config, discovered: Iterable[str] = (), *, local_only: bool = False
                    ) -> list[ClusterTarget]:
    """The clusters to verify, configured ones first, then discovered ones, narrowed by
    ``verify.clusters``. A malformed entry is a ``ConfigError``, an unknown ``--cluster`` a
    ``UsageError``: one line, exit 2. ``local_only`` leaves out the clusters without a kubeconfig
    of their own (discovered ones, and ``clusters`` entries that name none): the ``kubernetes``
    and ``rethinkdb`` layers need one, and the default places belong to the default cluster."""
    entries = config["clusters"]
    if entries:
        default_id = config["defaults.cluster"]
        ids = [e.get("id") if isinstance(e, dict) else e for e in entries]
        inherits = [len(entries) == 1 or (bool(default_id) and ids[i] == default_id) for i in range(len(entries))]
        targets = [_from_entry(config, entry, i, inherits[i]) for i, entry in enumerate(entries)]
        seen: dict[str, int] = {}
        for i, target in enumerate(targets):
            if target.id in seen:
                raise ConfigError(f"cluster id {target.id!r} is listed twice (also clusters[{seen[target.id]}])",
                                  key=f"clusters[{i}]", source=_origin(config, "clusters"))
            seen[target.id] = i
    else:
        targets = [ClusterTarget(
            id=config["defaults.cluster"] or DEFAULT_CLUSTER_ID, kubeconfig=config["kubernetes.kubeconfig"],
            context=config["kubernetes.context"], rethinkdb=_rethink(config, {}), origin="defaults")]
    known = {t.id for t in targets}
    for cluster_id in discovered:
        if cluster_id not in known:
            known.add(cluster_id)
            targets.append(ClusterTarget(id=cluster_id, kubeconfig=None, context=None,
                                         rethinkdb=_rethink(config, {}), origin="hostapp"))
    for cluster_id in _gate_targets(config):  # a gated command's target: gated through the Host App
        if cluster_id not in known:
            known.add(cluster_id)
            targets.append(ClusterTarget(id=cluster_id, kubeconfig=None, context=None,
                                         rethinkdb=_rethink(config, {}), origin="remote"))
    only = [str(c) for c in config["verify.clusters"]]
    if only:
        missing = [c for c in only if c not in known]
        if missing:
            raise UsageError(f"--cluster {missing[0]!r} is not a known cluster{did_you_mean(missing[0], known)}; "
                             f"known: {', '.join(sorted(known))}")
        targets = [t for t in targets if t.id in only]
    return [t for t in targets if t.origin not in ("hostapp", "remote")] if local_only else targets


def _gate_targets(config: Config) -> list[str]:
    """``verify.gate_targets``: the clusters a gated command acts on. One that is neither configured
    nor discovered (the Host App is down, or does not know it) is still a target: its gate then
    fails (``guildnet.hostapp.reachable``, ``guildnet.cluster.registered``) instead of the command
    stopping on a usage error. ``mgn verify --cluster`` never sets it: a typo there stays one."""
    if "verify.gate_targets" not in config:
        return []
    return [str(c).strip() for c in config["verify.gate_targets"] or [] if str(c).strip()]


def local_cluster_checks(layers: Iterable[str]) -> list[tuple[str, tuple[str, ...], bool]]:
    """``(id, gates, waivable)`` of the built-in per-cluster checks of ``layers`` (kubernetes,
    rethinkdb) from their metadata: what a cluster without a local kubeconfig does not run."""
    import importlib

    from mgn_verify._marks import get_marks

    found: list[tuple[str, tuple[str, ...], bool]] = []
    for layer in layers:
        if layer not in ("kubernetes", "rethinkdb"):
            continue
        module = importlib.import_module(f"mgn_verify.checks.{layer}")
        for func in getattr(module, "CLUSTER_CHECKS", ()):
            for mark in get_marks(func, "check"):
                if mark.kwargs.get("id"):
                    found.append((str(mark.kwargs["id"]), tuple(mark.kwargs.get("gates") or ()),
                                  bool(mark.kwargs.get("waivable", True))))
    return found


def kubeconfig_candidates(target: ClusterTarget, env: os._Environ[str] | dict[str, str] | None = None
                          ) -> list[tuple[Path, str]]:
    """Where the cluster's kubeconfig may be, in order, each with what names it:
    ``kubernetes.kubeconfig`` (or the cluster's own entry), else ``$KUBECONFIG`` (its first file;
    set, it is the only place, as for kubectl), else the defaults: GuildNet's
    ``~/.guildnet/kubeconfig``, then kubectl's ``~/.kube/config``."""
    env = os.environ if env is None else env
    if target.kubeconfig:
        return [(Path(target.kubeconfig).expanduser(), target.kubeconfig_setting)]
    if target.origin in ("remote", "hostapp"):
        return []  # the default places belong to the default cluster
    if env.get("KUBECONFIG"):
        first = env["KUBECONFIG"].split(os.pathsep)[0]
        return [(Path(first).expanduser(), "KUBECONFIG")]
    return [(Path("~/.guildnet/kubeconfig").expanduser(), "default"),
            (Path("~/.kube/config").expanduser(), "default")]


def wants_discovery(config: Config, selection: Sequence[str]) -> bool:
    """Ask the Host App for its clusters only when a per-cluster layer is selected."""
    if not config["api.discover_clusters"]:
        return False
    return not selection or "all" in selection or any(layer in selection for layer in GUILDNET_LAYERS)


def explicitly_selected(plan: Any, layer: str) -> bool:
    """Whether the user named ``layer`` on the command line (``mgn verify kubernetes``), as
    opposed to ``all``: a missing target then fails instead of skipping."""
    return layer in (getattr(plan, "selection", None) or ())


def not_found(plan: Any, layer: str, message: str, *, hint: str) -> NoReturn:
    """A target that is neither configured nor at its default location: ``skip`` in a run of all
    layers (no false failure on a machine without GuildNet), a failure when the layer was asked
    for by name."""
    if explicitly_selected(plan, layer):
        raise AssertionError(f"{message}: {hint}")
    skip(f"not configured: {hint} ({message})")


def per_cluster(func: Callable[..., Any], cluster_ids: Sequence[str]) -> Callable[..., Any]:
    """A copy of the ``@check`` function ``func``, parametrized over ``cluster``: the original is
    left untouched, so registering again (another session in the same process) starts clean."""
    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__,
                              func.__closure__)
    copy.__kwdefaults__ = getattr(func, "__kwdefaults__", None)
    copy.__doc__ = func.__doc__
    copy.__module__ = func.__module__
    copy.__qualname__ = func.__qualname__
    copy.__annotations__ = dict(getattr(func, "__annotations__", {}))
    setattr(copy, MARKS_ATTR, list(getattr(func, MARKS_ATTR, ())))
    return parametrize("cluster", list(cluster_ids))(copy)


_discovery_lock = threading.Lock()
_discovery_cache: tuple[Config, list[str]] | None = None


def local_cluster_targets(config: Config, selection: Sequence[str]) -> list[ClusterTarget]:
    """The clusters with a kubeconfig and database of their own (configured or the default one):
    what the ``kubernetes`` and ``rethinkdb`` layers verify. ``--cluster`` may still name a
    discovered cluster (it narrows these to none)."""
    return cluster_targets(config, discovered_cluster_ids(config, selection), local_only=True)


def register_per_cluster(registry: Any, checks: Iterable[Callable[..., Any]], targets: Iterable[ClusterTarget]
                         ) -> None:
    """Add each check once per cluster of ``targets`` (the body of a layer's ``mgn_register_checks``)."""
    ids = [t.id for t in targets]
    for func in checks:
        registry.add_check(per_cluster(func, ids))


def discovered_cluster_ids(config: Config, selection: Sequence[str]) -> list[str]:
    """The ids of the clusters the Host App lists, when discovery is wanted and it answers
    (else none: ``guildnet.hostapp.reachable`` reports why), leaving out the records that are a
    configured cluster known there by its name (each bootstrap makes a UUID: ``clusters: [prod]``
    is the record named ``prod``). Cached per run (per ``config`` object), so the kubernetes,
    rethinkdb and guildnet plugins ask once."""
    global _discovery_cache
    if not wants_discovery(config, selection):
        return []
    with _discovery_lock:
        if _discovery_cache is not None and _discovery_cache[0] is config:
            return list(_discovery_cache[1])
        configured = set(configured_cluster_ids(config))
        ids = [cid for cid, name in _ask_host_app(config) if cid in configured or name not in configured]
        _discovery_cache = (config, ids)
        return list(ids)


def configured_cluster_ids(config: Config) -> list[str]:
    """The ids of the configured clusters (`clusters`, else `defaults.cluster` or "default")."""
    entries = config["clusters"] or []
    if not entries:
        return [str(config["defaults.cluster"] or DEFAULT_CLUSTER_ID)]
    return [str(e.get("id") if isinstance(e, dict) else e).strip() for e in entries]


def _ask_host_app(config: Config) -> list[tuple[str, str]]:
    """``(id, name)`` of each cluster: ``GET /api/deploy/clusters`` (else ``/api/health``'s
    clusters), short timeout, no retries; any failure is no cluster."""
    from mgn_verify._exceptions import ApiError
    from mgn_verify.clients.hostapp import HostAppClient

    timeout = float(config["api.discover_timeout"]) if "api.discover_timeout" in config else 2.0
    try:
        with HostAppClient.from_config(config, timeout=timeout, retries=0) as client:
            try:
                found = [(r.id, r.name) for r in client.clusters()]
            except ApiError:  # it answered, but not this route: its health report lists them too
                found = [(c.id, c.name) for c in client.health().clusters]
    except Exception:  # any failure is "no cluster": guildnet.hostapp.reachable says why
        return []
    return list(dict.fromkeys((cid, name) for cid, name in found if cid))
