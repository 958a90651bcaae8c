"""What each lab fault must look like in a run: the check that catches it and what it blocks.

One row per fault the lab knows (a test pins that every fault has a row), so adding a fault to a
simulator without a check that catches it fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXPECTED", "Expectation"]


@dataclass(frozen=True)
class Expectation:
    layers: tuple[str, ...]          # what to run (`mgn verify LAYERS`)
    check: str                       # the check that must catch the fault
    statuses: tuple[str, ...]        # its status
    exit_code: int
    message: str = ""                # a regular expression its message must match
    blocks: tuple[str, ...] = ()     # dependents that must be blocked by it


def _fail(layers: str, check: str, message: str = "", *blocks: str, exit_code: int = 1) -> Expectation:
    return Expectation(tuple(layers.split()), check, ("fail",), exit_code, message, blocks)


def _warn(layers: str, check: str, message: str = "") -> Expectation:
    return Expectation(tuple(layers.split()), check, ("warn",), 0, message)


EXPECTED: dict[str, Expectation] = {}

_TS = "tailscale"
EXPECTED.update({
    "tailscale.down": _fail(_TS, "tailscale.daemon", "", "tailscale.backend.running"),
    "tailscale.needs_login": _fail(_TS, "tailscale.backend.running", "NeedsLogin", "tailscale.self.online"),
    "tailscale.key_expired": _fail(_TS, "tailscale.key.expiry", "expired", "tailscale.backend.running"),
    "tailscale.key_expiring": _warn(_TS, "tailscale.key.expiry"),
    "tailscale.stopped": _fail(_TS, "tailscale.backend.running", "Stopped", "tailscale.self.online"),
    "tailscale.needs_machine_auth": _fail(_TS, "tailscale.backend.running", "NeedsMachineAuth"),
    "tailscale.peer_offline": _fail(_TS, "tailscale.peer.online[talos-worker-1]", "",
                                    "tailscale.peer.direct[talos-worker-1]"),
    "tailscale.derp_only": _warn(_TS, "tailscale.peer.direct[talos-cp-1.guildnet.lab]", "DERP"),
    "tailscale.accept_routes_off": _warn(_TS, "tailscale.health"),
    "tailscale.outdated": _warn(_TS, "tailscale.version"),
    "headscale.down": _fail(_TS, "headscale.reachable", "", "headscale.api.auth"),
    "headscale.db_unavailable": _fail(_TS, "headscale.reachable", "", "headscale.api.auth"),
    "headscale.api_key_revoked": _fail(_TS, "headscale.api.auth", "", "headscale.node.registered"),
    "headscale.route_disabled": _fail(_TS, "headscale.route[10.244.0.0/16]"),
})

_GN = "guildnet"
EXPECTED.update({
    "hostapp.down": _fail(_GN, "guildnet.hostapp.reachable", "refused", "guildnet.hostapp.api",
                          "guildnet.cluster.registered[lab]"),
    "hostapp.http_500": _fail(_GN, "guildnet.hostapp.api", "500", "guildnet.cluster.registered[lab]"),
    "hostapp.no_kubeconfig": _fail(_GN, "guildnet.cluster.health[lab]", "mgn cluster bootstrap --kubeconfig",
                                   "guildnet.cluster.status[lab]", "guildnet.cluster.db_health[lab]"),
    # An expired certificate is also why the Host App is unreachable: TLS verification fails first.
    "tls.expired": _fail("guildnet", "guildnet.hostapp.reachable", "certificate has expired",
                         "guildnet.hostapp.api"),
})

_RDB = "rethinkdb"
EXPECTED.update({
    "rethinkdb.down": _fail(_RDB, "rethinkdb.reachable[lab]", "", "rethinkdb.auth[lab]"),
    "rethinkdb.bad_password": _fail(_RDB, "rethinkdb.auth[lab]", "authentication failed for user admin",
                                    "rethinkdb.issues[lab]"),
    "rethinkdb.critical_issue": _fail(_RDB, "rethinkdb.issues[lab]"),
    "rethinkdb.table_not_ready": _fail(_RDB, "rethinkdb.tables.ready[lab]"),
    "rethinkdb.slow": _warn(_RDB, "rethinkdb.latency[lab]"),
    "rethinkdb.replica_lagging": _warn(_RDB, "rethinkdb.tables.ready[lab]"),
    "rethinkdb.replica_unreachable": _fail(_RDB, "rethinkdb.servers[lab]"),
    "rethinkdb.no_password": _fail(_RDB, "rethinkdb.admin.password[lab]"),
})

_K8S = "kubernetes"
EXPECTED.update({
    "kubernetes.down": _fail(_K8S, "kubernetes.api.reachable[lab]", "", "kubernetes.nodes.ready[lab]"),
    "kubernetes.slow": _warn(_K8S, "kubernetes.api.latency[lab]"),
    "kubernetes.readyz_failing": _fail(_K8S, "kubernetes.api.livez[lab]", r"\[-\]etcd failed",
                                       "kubernetes.api.readyz[lab]"),
    "kubernetes.shutting_down": _fail(_K8S, "kubernetes.api.readyz[lab]", r"\[-\]shutdown failed"),
    "kubernetes.forbidden": _fail(_K8S, "kubernetes.rbac.read[lab]", "", "kubernetes.nodes.ready[lab]"),
    "kubernetes.node_not_ready": _fail(_K8S, "kubernetes.nodes.ready[lab]", "lab-worker"),
    "kubernetes.pod_crashloop": _fail(_K8S, "kubernetes.pods.platform[lab]", "CrashLoopBackOff"),
    "kubernetes.operator_down": _fail(_K8S, "kubernetes.operator[lab]"),
    "kubernetes.no_default_storageclass": _fail(_K8S, "kubernetes.storage.default_class[lab]"),
    # Only a new workspace shows it: the opt-in smoke test's Workspace never leaves Pending.
    "kubernetes.image_pull_failing": _fail("guildnet --set guildnet.smoke_test=true --set guildnet.smoke_timeout=3",
                                           "guildnet.cluster.smoke_test[lab]", "still Pending"),
})
