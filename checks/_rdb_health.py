"""The cluster's health as the server reports it: ``current_issues``, the servers connected,
GuildNet's databases and tables ready for writes, replicas per shard, and an opt-in write.

Each check reads the system tables it needs (``rethinkdb.current_issues``, ``server_status``,
``table_config``, ``table_status``) through the cluster's one connection; all require
``rethinkdb.auth`` of the same cluster.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from mgn_verify import Config, check, skip, warn

from ._rdb_common import AUTH, ISSUES, RethinkPool, guildnet_databases

__all__: list[str] = []


@check(
    id="rethinkdb.issues",
    title="No current issues",
    severity="critical",
    requires=AUTH,
    remediation="read r.db('rethinkdb').table('current_issues'): bring back the servers it names "
    "(kubectl -n default get pods -l app=rethinkdb), or reconfigure the tables onto servers that exist "
    "(r.db(DB).table(T).reconfigure(shards=1, replicas=1))",
)
def check_issues(cluster: str, rethinkdb_clusters: RethinkPool) -> dict[str, Any]:
    """``rethinkdb.current_issues`` is empty: a critical issue fails, any other warns, each with the
    server's own description."""
    issues = rethinkdb_clusters.client(cluster).table("current_issues")
    critical = [i for i in issues if i.get("critical")]
    others = [i for i in issues if not i.get("critical")]

    def describe(found: list[dict[str, Any]]) -> str:
        return "; ".join(f"[{i.get('type')}] {i.get('description')}" for i in found)

    assert not critical, f"{len(critical)} critical issue(s): {describe(critical)}"
    if others:
        warn(f"{len(others)} issue(s): {describe(others)}")
    return {"message": "the server reports no issues", "issues": 0}


@check(
    id="rethinkdb.servers",
    title="Every expected server is connected",
    severity="critical",
    requires=ISSUES,
    remediation="start the missing servers (kubectl -n default get statefulset rethinkdb; their logs say why "
    "they left), or remove them from the tables' replicas (reconfigure); set rethinkdb.expected_servers "
    "and rethinkdb.min_servers to what this cluster should have",
)
def check_servers(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """Every server in ``rethinkdb.expected_servers`` and every server a table's replicas name is in
    ``server_status``, connected to the others, and there are at least ``rethinkdb.min_servers``."""
    found = rethinkdb_clusters.client(cluster).tables("server_status", "table_config")
    status = found["server_status"]
    connected = sorted(str(row.get("name")) for row in status)
    wanted: dict[str, str] = {str(name): "listed in rethinkdb.expected_servers"
                              for name in config["rethinkdb.expected_servers"]}
    for table in found["table_config"]:
        for shard in table.get("shards") or []:
            for server in shard.get("replicas") or []:
                wanted.setdefault(str(server), f"holds a replica of {table.get('db')}.{table.get('name')}")
    problems = [f"{name} is not connected ({why})" for name, why in sorted(wanted.items()) if name not in connected]
    for row in status:
        cut = sorted(peer for peer, up in (row.get("network") or {}).get("connected_to", {}).items() if not up)
        if cut:
            problems.append(f"{row.get('name')} cannot reach {', '.join(cut)}")
    minimum = int(config["rethinkdb.min_servers"])
    if len(connected) < minimum:
        problems.append(f"{len(connected)} server(s) connected, rethinkdb.min_servers is {minimum}")
    assert not problems, "; ".join(problems)
    return {"message": f"{len(connected)} server(s) connected: {', '.join(connected)}", "servers": connected}


def _selected_tables(client: Any, config: Config, cluster: str, system_table: str
                     ) -> tuple[list[str], list[dict[str, Any]]]:
    """GuildNet's databases and their rows of ``rethinkdb.<system_table>``; a skip when there is none."""
    found = client.tables(system_table, db_list=True)
    dbs, patterns = guildnet_databases(config, cluster, found["db_list"])
    if not dbs:
        skip(f"no GuildNet database on this server (none matches {', '.join(patterns)}; see rethinkdb.databases)")
    return dbs, [row for row in found[system_table] if row.get("db") in dbs]


def _replica_states(row: dict[str, Any]) -> str:
    shards = row.get("shards")
    if shards is None:
        return "no replica reachable"
    states = [f"{r.get('server')} {r.get('state')}" for s in shards for r in s.get("replicas") or []
              if r.get("state") != "ready"]
    return ", ".join(states) or "replicas not ready"


@check(
    id="rethinkdb.tables.ready",
    title="GuildNet's tables are ready for writes",
    severity="critical",
    requires=ISSUES,
    remediation="r.db(DB).table(T).status() shows each replica's state: bring back disconnected servers, "
    "wait for backfilling replicas (r.db(DB).table(T).wait()), and create missing meta tables by "
    "re-creating the database through the Host App",
)
def check_tables_ready(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """Each GuildNet database has its meta tables and each of its tables is ready for writes
    (``table_status``); a table that is writable but has replicas not ready is a warning."""
    client = rethinkdb_clusters.client(cluster)
    dbs, rows = _selected_tables(client, config, cluster, "table_status")
    present = {(row.get("db"), row.get("name")) for row in rows}
    missing = [f"{db}.{t}" for db in dbs for t in config["rethinkdb.meta_tables"] if (db, t) not in present]
    unwritable, lagging = [], []
    for row in sorted(rows, key=lambda r: (str(r.get("db")), str(r.get("name")))):
        status, name = row.get("status") or {}, f"{row.get('db')}.{row.get('name')}"
        if not status.get("ready_for_writes"):
            unwritable.append(f"{name} not ready for writes ({_replica_states(row)})")
        elif not status.get("all_replicas_ready"):
            lagging.append(f"{name} ({_replica_states(row)})")
    problems = unwritable + ([f"missing meta table(s): {', '.join(missing)}"] if missing else [])
    assert not problems, "; ".join(problems)
    if lagging:
        warn(f"writable, but not all replicas are ready: {'; '.join(lagging)}")
    return {"message": f"{len(rows)} table(s) in {len(dbs)} database(s) ready for writes, all replicas ready",
            "databases": dbs, "tables": len(rows)}


@check(
    id="rethinkdb.tables.replicas",
    title="GuildNet's tables have enough replicas",
    severity="warning",
    requires=AUTH,
    remediation="add servers and raise the replica count: r.db(DB).table(T).reconfigure(shards=1, replicas=N) "
    "(or r.db(DB).reconfigure(...) for every table of a database); or lower rethinkdb.min_replicas",
)
def check_tables_replicas(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """Every shard of every GuildNet table has at least ``rethinkdb.min_replicas`` replicas."""
    _, rows = _selected_tables(rethinkdb_clusters.client(cluster), config, cluster, "table_config")
    minimum = int(config["rethinkdb.min_replicas"])
    short = []
    for row in sorted(rows, key=lambda r: (str(r.get("db")), str(r.get("name")))):
        counts = [len(shard.get("replicas") or []) for shard in row.get("shards") or []]
        if not counts or min(counts) < minimum:
            short.append(f"{row.get('db')}.{row.get('name')} has {min(counts, default=0)}")
    assert not short, f"fewer than {minimum} replica(s) per shard: {', '.join(short)}"
    return {"message": f"{len(rows)} table(s) with at least {minimum} replica(s) per shard", "tables": len(rows)}


@check(
    id="rethinkdb.write_test",
    title="A write, read and delete round-trip works (opt-in)",
    severity="critical",
    requires=AUTH,
    timeout=30.0,  # about eight round trips, queued behind the other checks on the one connection
    remediation="make the scratch table writable (see rethinkdb.tables.ready and rethinkdb.issues) and give "
    "rethinkdb.user write access to it; or set rethinkdb.write_test_table to a table it may write",
)
def check_write_test(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """With ``rethinkdb.write_test`` on: insert a document into ``rethinkdb.write_test_table`` (created
    if missing, and then dropped), read it back, delete it."""
    where = str(config["rethinkdb.write_test_table"])
    if not config["rethinkdb.write_test"]:
        skip(f"off (it writes): set rethinkdb.write_test=true to write, read and delete a document in {where}")
    db, _, name = where.partition(".")
    if not db or not name:
        raise ValueError(f"rethinkdb.write_test_table must be DB.TABLE, not {where!r}")
    client = rethinkdb_clusters.client(cluster)
    r, created = client.r, []
    started = time.perf_counter()
    if db not in client.run(r.db_list()):
        client.run(r.db_create(db))
        created.append("db")
    try:
        if name not in client.run(r.db(db).table_list()):
            client.run(r.db(db).table_create(name))
            created.append("table")
        table = r.db(db).table(name)
        client.run(table.wait(wait_for="ready_for_writes", timeout=max(1, round(rethinkdb_clusters.timeout))))
        doc = {"id": f"mgn-verify-{uuid.uuid4()}", "written_at": time.time()}
        inserted = client.run(table.insert(doc, return_changes=True))
        assert inserted.get("inserted") == 1, f"insert into {where} did not insert: {inserted.get('first_error')}"
        assert inserted["changes"][0]["new_val"] == doc, f"{where} stored something else than was written"
        assert client.run(table.get(doc["id"])) == doc, f"reading the document back from {where} gave another one"
        deleted = client.run(table.get(doc["id"]).delete())
        assert deleted.get("deleted") == 1, f"deleting the document from {where} deleted {deleted.get('deleted')}"
    finally:
        if "db" in created:
            client.run(r.db_drop(db))
        elif "table" in created:
            client.run(r.db(db).table_drop(name))
    took = time.perf_counter() - started
    return {"message": f"wrote, read back and deleted a document in {where} ({took * 1000:.0f} ms)",
            "table": where, "created": created}
