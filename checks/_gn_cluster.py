"""The guildnet layer's per-cluster checks: what the Host App says about each cluster.

Registered once per cluster by ``checks/guildnet.py`` (``per_cluster``): ids such as
``guildnet.cluster.status[prod-east]``. Every one requires ``guildnet.hostapp.api`` (through
``guildnet.cluster.registered[...]``), so a Host App that is down blocks them all, and one broken
cluster blocks only its own checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mgn_verify import Config, check, skip, warn
from mgn_verify._exceptions import ClientError
from mgn_verify._text import did_you_mean

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import ClusterRecord, HostAppClient

__all__ = ["ACTIONS", "host_record"]

ATTACH = "attach a kubeconfig: mgn cluster bootstrap --kubeconfig PATH"
#: What the Host App's ``recommendedAction`` means, as a command or a step.
ACTIONS = {
    "attach_kubeconfig": ATTACH,
    "check_cluster_network": "make the cluster's API server reachable from the Host App host "
    "(see kubernetes.api.reachable for the cluster; firewall, VPN/tailnet route, API server up)",
}


def _client_failure(exc: ClientError) -> AssertionError:
    return AssertionError(str(exc))


@check(
    id="guildnet.cluster.registered",
    gates=["cluster.delete", "workspace.create", "workspace.delete", "federation.deploy"],
    title="The cluster is registered in the Host App",
    requires="guildnet.hostapp.api",
    remediation="register it with the Host App: `mgn cluster bootstrap --kubeconfig PATH` (POST /api/bootstrap); "
    "or fix its id in `clusters` / defaults.cluster to the Host App's id (GET /api/deploy/clusters)",
    timeout=40,
)
def check_registered(cluster: str, config: Config, guildnet_hostapp: HostAppClient,
                     guildnet_origins: dict[str, str], guildnet_ids: dict[str, str]) -> dict[str, object]:
    try:
        records = guildnet_hostapp.clusters()
    except ClientError as exc:
        raise _client_failure(exc) from None
    record, problem = host_record(records, cluster)
    listed = ", ".join(f"{r.id} ({r.name})" if r.name and r.name != r.id else r.id for r in records) or "none"
    if problem:
        raise AssertionError(problem)
    if record is None:
        named = cluster in [str(c) for c in config["verify.clusters"]]  # --cluster / a gate's target
        if guildnet_origins.get(cluster) == "defaults" and not named:
            skip(f"cluster {cluster!r} (the default cluster, not configured) is not registered in the Host App, "
                 f"which lists: {listed}; name them in `clusters` to verify them here")
        names = [n for r in records for n in (r.id, r.name) if n]
        raise AssertionError(f"cluster {cluster!r} is not registered in the Host App (by id or name)"
                             f"{did_you_mean(cluster, names)}, which lists: {listed}")
    guildnet_ids[cluster] = record.id  # the Host App's routes take its id (a bootstrap makes a UUID)
    details: dict[str, object] = {"id": record.id, "name": record.name, "state": record.state,
                                  "created_at": record.created_at}
    if record.state == "creating":
        warn(f"cluster {cluster!r} ({record.name}) is still being created (state creating)")
    known_as = f"id {record.id}, " if record.id != cluster else ""
    return {"message": f"registered as {record.name!r} ({known_as}state {record.state})", **details}


def host_record(records: Sequence[ClusterRecord], ref: str) -> tuple[ClusterRecord | None, str]:
    """The Host App's record for ``ref`` (its id, else its name: ``cluster_matches``);
    ``(None, problem)`` when several records share the name."""
    from mgn_verify.clients.hostapp import cluster_matches

    found = cluster_matches(records, ref)
    if len(found) > 1:
        ids = ", ".join(r.id for r in found)
        return None, (f"{len(found)} clusters of the Host App are named {ref!r} ({ids}): name the one to verify "
                      "by its id in `clusters`, or delete the stale records (mgn cluster delete ID)")
    return (found[0] if found else None), ""


@check(
    id="guildnet.cluster.health",
    title="The Host App reports the cluster healthy (/api/health)",
    requires="guildnet.cluster.registered[{cluster}]",
    remediation="no_kubeconfig: `mgn cluster bootstrap --kubeconfig PATH`; cluster_unreachable: make the "
    "cluster's API server reachable from the Host App (kubernetes.api.reachable shows it from here)",
    timeout=40,
)
def check_health(cluster: str, guildnet_hostapp: HostAppClient, guildnet_ids: dict[str, str]) -> dict[str, object]:
    try:
        entry = guildnet_hostapp.health().cluster(guildnet_ids.get(cluster, cluster))
    except ClientError as exc:
        raise _client_failure(exc) from None
    assert entry is not None, f"/api/health does not list cluster {cluster!r} (removed since it was listed?)"
    details: dict[str, object] = {"status": entry.status, "code": entry.code, "note": entry.note}
    if entry.ok:
        if entry.note == "proxy_fallback_enabled":
            warn(f"cluster {cluster!r} is reachable only through the kubectl proxy fallback (KUBE_PROXY_ADDR): "
                 "the Host App rewrote its settings to use it")
        return {"message": f"cluster {cluster!r} ok", **details}
    if entry.code == "no_kubeconfig":
        raise AssertionError(f"the Host App has no usable kubeconfig for cluster {cluster!r} (no_kubeconfig): "
                             f"{ATTACH}")
    if entry.code == "cluster_unreachable":
        raise AssertionError(f"the Host App cannot reach the Kubernetes API of cluster {cluster!r} "
                             f"(cluster_unreachable): {entry.error or 'no detail given'}")
    if entry.code == "bad_kubeconfig":
        raise AssertionError(f"the kubeconfig stored for cluster {cluster!r} does not parse (bad_kubeconfig): "
                             f"{entry.error or ''}; {ATTACH}")
    raise AssertionError(f"cluster {cluster!r}: status {entry.status}"
                         + (f", code {entry.code}" if entry.code else "")
                         + (f": {entry.error}" if entry.error else ""))


@check(
    id="guildnet.cluster.status",
    gates=["workspace.create", "workspace.delete", "federation.deploy"],
    title="The Host App has a valid kubeconfig and reaches Kubernetes (/status)",
    requires="guildnet.cluster.health[{cluster}]",
    remediation="follow the Host App's recommendedAction: attach_kubeconfig → `mgn cluster bootstrap "
    "--kubeconfig PATH`; check_cluster_network → make the API server reachable from the Host App host",
    timeout=40,
)
def check_status(cluster: str, guildnet_hostapp: HostAppClient, guildnet_ids: dict[str, str]) -> dict[str, object]:
    try:
        status = guildnet_hostapp.cluster_status(guildnet_ids.get(cluster, cluster))
    except ClientError as exc:
        raise _client_failure(exc) from None
    details: dict[str, object] = {
        "kubeconfig_present": status.kubeconfig_present, "kubeconfig_valid": status.kubeconfig_valid,
        "k8s_reachable": status.k8s_reachable, "pf_available": status.pf_available,
        "tsnet_available": status.tsnet_available, "recommended_action": status.recommended_action,
    }
    if status.ok:
        extras = ", ".join(n for n, on in (("port-forward", status.pf_available),
                                           ("tsnet", status.tsnet_available)) if on) or "none"
        return {"message": f"kubeconfig present and valid, Kubernetes reachable; proxy paths: {extras}", **details}
    action = status.recommended_action or ""
    todo = f" → recommendedAction {action}: {ACTIONS.get(action, action)}" if action else ""
    if not status.kubeconfig_present:
        problem = "no kubeconfig stored"
    elif not status.kubeconfig_valid:
        problem = "the stored kubeconfig is not valid"
    else:
        problem = f"Kubernetes not reachable: {status.k8s_error or 'no detail given'}"
    raise AssertionError(f"cluster {cluster!r}: {problem}{todo}")


@check(
    id="guildnet.cluster.db_health",
    title="The Host App reaches the cluster's RethinkDB (/db/health)",
    requires="guildnet.cluster.status[{cluster}]",
    remediation="check the cluster's `rethinkdb` Service and pods (`kubectl get svc,pods -l app=rethinkdb`) "
    "and the rethinkdb layer (`mgn verify rethinkdb`)",
    timeout=40,
)
def check_db_health(cluster: str, guildnet_hostapp: HostAppClient, guildnet_ids: dict[str, str]) -> dict[str, object]:
    try:
        health = guildnet_hostapp.db_health(guildnet_ids.get(cluster, cluster))
    except ClientError as exc:  # DegradedError included: 200 [] means no kube clients
        raise _client_failure(exc) from None
    details: dict[str, object] = {"status": health.status, "addr": health.addr}
    assert health.ok, (f"RethinkDB {health.status} for cluster {cluster!r}"
                       f"{' at ' + health.addr if health.addr else ''}: {health.error or 'no detail given'}")
    return {"message": f"RethinkDB ok at {health.addr or 'an undisclosed address'}", **details}
