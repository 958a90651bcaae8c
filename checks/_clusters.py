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

__all__ = [
    "GUILDNET_LAYERS",
    "ClusterTarget",
    "RethinkTarget",
    "cluster_targets",
    "explicitly_selected",
    "local_cluster_targets",
    "not_found",
    "per_cluster",
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
    list), ``defaults`` (no list: the top-level settings) or ``hostapp`` (discovered)."""

    id: str
    kubeconfig: str | None
    context: str | None
    rethinkdb: RethinkTarget
    origin: str

    @property
    def configured(self) -> bool:
        """Whether a kubeconfig was named for it (else the default locations are tried)."""
        return self.kubeconfig is not None


def _rethink(config: Config, overrides: dict[str, Any]) -> RethinkTarget:
    merged = {**config.section("rethinkdb"), **overrides}
    return RethinkTarget(
        host=str(merged.get("host") or ""), port=int(merged.get("port") or 28015),
        user=str(merged.get("user") or "admin"), password=str(merged.get("password") or ""),
        service=str(merged.get("service") or "rethinkdb"), namespace=str(merged.get("namespace") or "default"),
    )


def _from_entry(config: Config, entry: object, index: int) -> ClusterTarget:
    if isinstance(entry, str) and entry.strip():
        entry = {"id": entry.strip()}
    if not isinstance(entry, dict) or not str(entry.get("id") or "").strip():
        raise ConfigError(f"must be an id or a mapping with an 'id', not {entry!r}", key=f"clusters[{index}]",
                          source=config.source("clusters"))
    rethinkdb = entry.get("rethinkdb") or {}
    if not isinstance(rethinkdb, dict):
        raise ConfigError("must be a mapping", key=f"clusters[{index}].rethinkdb", source=config.source("clusters"))
    password = rethinkdb.get("password")
    if password:
        config.mark_secret(password)  # a per-cluster password is as secret as rethinkdb.password
    return ClusterTarget(
        id=str(entry["id"]).strip(),
        kubeconfig=str(entry["kubeconfig"]) if entry.get("kubeconfig") else config["kubernetes.kubeconfig"],
        context=str(entry["context"]) if entry.get("context") else None,
        rethinkdb=_rethink(config, rethinkdb), origin="config",
    )


def cluster_targets(config: Config, discovered: Iterable[str] = (), *, local_only: bool = False
                    ) -> list[ClusterTarget]:
    """The clusters to verify, configured ones first, then discovered ones, narrowed by
    ``verify.clusters``. A malformed entry is a ``ConfigError``, an unknown ``--cluster`` a
    ``UsageError``: one line, exit 2. ``local_only`` leaves out discovered clusters: the
    ``kubernetes`` and ``rethinkdb`` layers need a kubeconfig of their own for a cluster, which
    only the ``clusters`` setting gives (the default places belong to the default cluster)."""
    entries = config["clusters"]
    if entries:
        targets = [_from_entry(config, entry, i) for i, entry in enumerate(entries)]
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
    only = [str(c) for c in config["verify.clusters"]]
    if only:
        missing = [c for c in only if c not in known]
        if missing:
            raise UsageError(f"--cluster {missing[0]!r} is not a known cluster; known: {', '.join(sorted(known))}")
        targets = [t for t in targets if t.id in only]
    return [t for t in targets if t.origin != "hostapp"] if local_only else targets


def kubeconfig_candidates(target: ClusterTarget, env: os._Environ[str] | dict[str, str] | None = None
                          ) -> list[tuple[Path, str]]:
    """Where the cluster's kubeconfig may be, in order, each with the setting that names it:
    ``kubernetes.kubeconfig`` (or the cluster's own entry), then ``$KUBECONFIG`` (its first
    file), then GuildNet's ``~/.guildnet/kubeconfig``, then ``~/.kube/config``."""
    env = os.environ if env is None else env
    if target.kubeconfig:
        return [(Path(target.kubeconfig).expanduser(), "kubernetes.kubeconfig")]
    found: list[tuple[Path, str]] = []
    if env.get("KUBECONFIG"):
        first = env["KUBECONFIG"].split(os.pathsep)[0]
        found.append((Path(first).expanduser(), "KUBECONFIG"))
    found.append((Path("~/.guildnet/kubeconfig").expanduser(), "GuildNet's default"))
    found.append((Path("~/.kube/config").expanduser(), "kubectl's default"))
    return found


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


def discovered_cluster_ids(config: Config, selection: Sequence[str]) -> list[str]:
    """The ids of the clusters the Host App lists, when discovery is wanted and it answers
    (else none: ``guildnet.hostapp.reachable`` reports why). Cached per run (per ``config``
    object), so the kubernetes, rethinkdb and guildnet plugins ask once."""
    global _discovery_cache
    if not wants_discovery(config, selection):
        return []
    with _discovery_lock:
        if _discovery_cache is not None and _discovery_cache[0] is config:
            return list(_discovery_cache[1])
        ids = _ask_host_app(config)
        _discovery_cache = (config, ids)
        return list(ids)


def _ask_host_app(config: Config) -> list[str]:
    """``GET /api/deploy/clusters`` (else ``/api/health``'s clusters), short timeout, no retries;
    any failure is no cluster."""
    from mgn_verify._exceptions import ApiError
    from mgn_verify.clients.hostapp import HostAppClient

    timeout = float(config["api.discover_timeout"]) if "api.discover_timeout" in config else 2.0
    try:
        with HostAppClient.from_config(config, timeout=timeout, retries=0) as client:
            try:
                ids = [r.id for r in client.clusters()]
            except ApiError:  # it answered, but not this route: its health report lists them too
                ids = [c.id for c in client.health().clusters]
    except Exception:  # any failure is "no cluster": guildnet.hostapp.reachable says why
        return []
    return list(dict.fromkeys(i for i in ids if i))
