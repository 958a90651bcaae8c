"""The ``rethinkdb`` layer: is each GuildNet cluster's RethinkDB reachable, secured, healthy, and
ready for GuildNet's writes?

Every check is per cluster (``rethinkdb.issues[prod-east]``), written once in a private module and
registered for each cluster by ``mgn_register_checks``. The chain of requirements makes one broken
thing one result: ``rethinkdb.reachable`` → ``rethinkdb.auth`` → every check that queries the
server; ``rethinkdb.admin.password`` needs only ``rethinkdb.reachable``. The ``rethinkdb`` driver
is imported only when a check runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from mgn_verify import Config, Registry, RunPlan, fixture, hookimpl
from mgn_verify.config import SettingsRegistry

from . import _rdb_conn, _rdb_health
from ._clusters import local_cluster_targets, register_per_cluster
from ._common import module_checks
from ._rdb_common import RethinkPool

#: Every @check of the helper modules, collected (no hand-kept list to forget a new one in).
CLUSTER_CHECKS = module_checks(_rdb_conn, _rdb_health)


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("rethinkdb.timeout", 5.0, help="seconds for a TCP connect, the handshake and Service discovery")
    add("rethinkdb.min_version", "2.3", help="oldest supported server version (the V1_0 handshake needs 2.3)")
    add("rethinkdb.max_version", "2.4", help="newest supported server version; 2.4 admits every 2.4.x")
    add("rethinkdb.latency_warn", 0.25, help="warn when the fastest trivial query takes longer (seconds)")
    add("rethinkdb.latency_samples", 2, help="trivial queries timed by rethinkdb.latency")
    add("rethinkdb.expected_servers", [], help="server names that must be connected (besides every server "
        "a table's replicas name)")
    add("rethinkdb.min_servers", 1, help="servers that must be connected")
    add("rethinkdb.databases", ["org_{cluster}__*"],
        help="GuildNet's databases, as globs; {cluster} is the cluster id as GuildNet spells it in "
        "org_<cluster>__<db> (lowercase, [a-z0-9_-])")
    add("rethinkdb.meta_tables", ["_schemas", "_audit", "_info"],
        help="tables the Host App creates in each of its databases")
    add("rethinkdb.min_replicas", 1, help="replicas each shard of a GuildNet table needs "
        "(GuildNet deploys one server: 1)")
    add("rethinkdb.write_test", False, help="write, read and delete a document in rethinkdb.write_test_table "
        "(off by default: it writes)")
    add("rethinkdb.write_test_table", "mgn_verify.scratch",
        help="DB.TABLE for the write test (created if missing, then dropped)")


@fixture
def rethinkdb_clusters(config: Config, plan: RunPlan) -> Iterator[RethinkPool]:
    """One RethinkDB connection per cluster for the run, closed at the end."""
    pool = RethinkPool(config, local_cluster_targets(config, plan.selection),
                       timeout=float(config["rethinkdb.timeout"]))
    try:
        yield pool
    finally:
        pool.close()


@hookimpl
def mgn_register_checks(registry: Registry, config: Config, selection: list[str]) -> None:
    register_per_cluster(registry, CLUSTER_CHECKS, local_cluster_targets(config, selection))
