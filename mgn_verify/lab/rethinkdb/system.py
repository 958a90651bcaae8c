"""In-memory cluster state of the lab RethinkDB simulator, and its `rethinkdb` system tables.

The row shapes follow ``protocols.md`` §1.5 (server 2.4.4). Every row that depends on the
cluster's shape (servers, replicas, readiness, issues) is derived from one ``Topology`` computed
from the faults active at that moment, so injecting or clearing a fault changes the next read
without a restart, and ``server_status``, ``table_config``, ``table_status`` and
``current_issues`` always describe the same cluster.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from mgn_verify.lab.rethinkdb.topology import (
    FINISHED,
    OUTDATED_READS,
    READS,
    UNAVAILABLE,
    WRITES,
    TableView,
    Topology,
)

__all__ = [
    "SYSTEM_DB",
    "SYSTEM_TABLES",
    "ClusterState",
    "FaultView",
    "TableData",
    "reql_time",
]

SYSTEM_DB: Final = "rethinkdb"
# Sorted, without the hidden `_debug_*` tables (protocols.md §1.5).
SYSTEM_TABLES: Final = (
    "cluster_config", "current_issues", "db_config", "jobs", "logs", "permissions",
    "server_config", "server_status", "stats", "table_config", "table_status", "users",
)
# Stable UUID namespace so ids are the same on every run (handy in test assertions).
_NS: Final = uuid.UUID("6f1d2b7e-1c3a-4f6e-9a51-6d2b9c0e4a10")

FAULT_NO_PASSWORD: Final = "rethinkdb.no_password"
# table_availability_issue_t::base_issue_id: an issue's id is uuid5(base, table id) (issues/table.cc).
_TABLE_ISSUE_BASE: Final = uuid.UUID("4ae8c575-b103-3335-a79a-121089e34339")
_BLURBS: Final = {
    UNAVAILABLE: "not available for any operations",
    OUTDATED_READS: "available for outdated reads, but not up-to-date reads or writes",
    READS: "available for outdated and up-to-date reads, but not writes",
    WRITES: "available for all operations, but some replicas are not ready",
}

READINESS_LEVELS: Final = ("ready_for_outdated_reads", "ready_for_reads", "ready_for_writes",
                           "all_replicas_ready")


class FaultView(Protocol):
    """The one method of ``FaultSet`` the simulator needs."""

    def active(self, name: str) -> bool: ...


def reql_time(epoch: float) -> dict[str, Any]:
    """A TIME pseudo-type, as the server sends it."""
    return {"$reql_type$": "TIME", "epoch_time": round(epoch, 3), "timezone": "+00:00"}


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def row_key(value: Any) -> str:
    """Hashable form of a primary-key value (strings, numbers, arrays)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class TableData:
    id: str
    db: str
    name: str
    primary_key: str = "id"
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)


class ClusterState:
    """Databases, tables, identity and counters of the single simulated server."""

    def __init__(self, faults: FaultView, databases: Mapping[str, Mapping[str, Iterable[Mapping[str, Any]]]],
                 *, server_name: str, has_password: bool, not_ready_table: tuple[str, str] | None,
                 replica_table: tuple[str, str] | None = None) -> None:
        self.faults = faults
        self.lock = threading.RLock()
        self.server_name = server_name
        self.server_id = stable_uuid("server", server_name)
        self.has_password = has_password
        self.started = time.time()
        self.port = 0
        self.dbs: dict[str, dict[str, TableData]] = {}
        self.db_ids: dict[str, str] = {}
        self.client_connections = 0
        self.queries_total = 0
        self.read_docs_total = 0
        self.written_docs_total = 0
        for db, tables in databases.items():
            self.create_db(db)
            for table, rows in tables.items():
                t = self.create_table(db, table)
                for row in rows:
                    doc = dict(row)
                    t.rows[row_key(doc[t.primary_key])] = doc
        self._table_a = not_ready_table
        self._table_b = replica_table

    # -- mutation helpers (callers hold ``lock``) -------------------------------------------

    def create_db(self, name: str) -> str:
        self.dbs[name] = {}
        self.db_ids[name] = stable_uuid("db", name, str(len(self.db_ids)))
        return self.db_ids[name]

    def create_table(self, db: str, name: str, primary_key: str = "id") -> TableData:
        t = TableData(id=stable_uuid("table", db, name, os.urandom(4).hex()), db=db, name=name,
                      primary_key=primary_key)
        self.dbs[db][name] = t
        return t

    # -- readiness (one model for status, issues, reads, writes and wait) ---------------------

    def guildnet_tables(self) -> list[tuple[str, str]]:
        """User tables, GuildNet's per-organisation databases (``org_*``) first, by name."""
        with self.lock:
            keys = [(db, name) for db in self.dbs for name in self.dbs[db]]
        return sorted(keys, key=lambda k: (not k[0].startswith("org_"), k))

    def topology(self) -> Topology:
        """The cluster under the faults active right now (see ``rethinkdb.topology``)."""
        tables = self.guildnet_tables()
        table_a = self._table_a or (tables[0] if tables else None)
        table_b = self._table_b or next((t for t in tables if t != table_a), None)
        return Topology(self.server_name, self.faults.active, table_a, table_b)

    def view(self, table: TableData, topology: Topology | None = None) -> TableView:
        return (topology or self.topology()).table(table.db, table.name)

    def readiness(self, table: TableData) -> dict[str, bool]:
        level = self.view(table).readiness
        return {"ready_for_outdated_reads": level >= OUTDATED_READS, "ready_for_reads": level >= READS,
                "ready_for_writes": level >= WRITES, "all_replicas_ready": level == FINISHED}

    def server_id_of(self, name: str) -> str:
        return self.server_id if name == self.server_name else stable_uuid("server", name)

    # -- system rows ------------------------------------------------------------------------

    def table_config(self, t: TableData, uuids: bool = False, topology: Topology | None = None) -> dict[str, Any]:
        view = self.view(t, topology)
        ref = self.server_id_of if uuids else str
        return {"db": self.db_ids[t.db] if uuids else t.db, "durability": "hard", "id": t.id,
                "indexes": [], "name": t.name, "primary_key": t.primary_key,
                "shards": [{"nonvoting_replicas": [], "primary_replica": ref(view.primary),
                            "replicas": [ref(s) for s in view.replicas]}],
                "write_acks": "majority", "write_hook": None}

    def db_config(self, db: str) -> dict[str, Any]:
        return {"id": self.db_ids[db], "name": db}

    def _status_fields(self, view: TableView, uuids: bool) -> dict[str, Any]:
        """``convert_table_status_to_datum``: shards (null on total loss), raft_leader, status."""
        ref = self.server_id_of if uuids else str
        shards: list[dict[str, Any]] | None = None
        if not view.total_loss:
            connected = [s for s in view.replicas if view.states[s] != "disconnected"]
            replicas = [{"server": ref(s), "state": view.replica_state(s)} for s in connected]
            # Disconnected replicas come after the ones that answered (table_status.cc).
            replicas += [{"server": ref(s), "state": "disconnected"} for s in view.disconnected]
            primaries = [ref(view.primary)] if view.states[view.primary] != "disconnected" else []
            shards = [{"primary_replicas": primaries, "replicas": replicas}]
        level = view.readiness
        return {"raft_leader": ref(view.raft_leader) if view.raft_leader else None, "shards": shards,
                "status": {"all_replicas_ready": level == FINISHED, "ready_for_outdated_reads": level >= OUTDATED_READS,
                           "ready_for_reads": level >= READS, "ready_for_writes": level >= WRITES}}

    def table_status(self, t: TableData, uuids: bool = False, topology: Topology | None = None) -> dict[str, Any]:
        return {"db": self.db_ids[t.db] if uuids else t.db, "id": t.id, "name": t.name,
                **self._status_fields(self.view(t, topology), uuids)}

    def _availability_issue(self, t: TableData, view: TableView, uuids: bool) -> dict[str, Any]:
        """``table_availability_issue_t``: info is the status plus table and db; critical below writes."""
        info = {**self._status_fields(view, uuids), "db": self.db_ids[t.db] if uuids else t.db,
                "table": t.id if uuids else t.name}
        if view.total_loss:
            text = (f"Table `{t.db}.{t.name}` is not available for any operations. No servers are reachable "
                    "for this table.")
        else:
            text = (f"Table `{t.db}.{t.name}` is {_BLURBS[view.readiness]}. The following servers are not "
                    f"reachable: {', '.join(view.disconnected)}")
        return {"critical": view.readiness < WRITES, "description": text,
                "id": str(uuid.uuid5(_TABLE_ISSUE_BASE, t.id)), "info": info, "type": "table_availability"}

    def current_issues(self, uuids: bool = False) -> list[dict[str, Any]]:
        topology = self.topology()
        with self.lock:
            tables = [t for db in sorted(self.dbs) for _, t in sorted(self.dbs[db].items())]
        issues = []
        for t in tables:
            view = topology.table(t.db, t.name)
            # issues/table.cc: an issue only when a replica's server is unreachable (or all are).
            if view.readiness != FINISHED and view.disconnected:
                issues.append(self._availability_issue(t, view, uuids))
        return issues

    def server_status(self, name: str, topology: Topology, uuids: bool = False) -> dict[str, Any]:
        started = reql_time(self.started)
        # Every other server some peer still sees (disconnected ones vanish: server_status.cc).
        peers = {self.server_id_of(s) if uuids else s: True for s in topology.connected if s != name}
        index = topology.servers.index(name)
        return {"id": self.server_id_of(name), "name": name,
                "network": {"canonical_addresses": [{"host": f"127.0.0.{1 + index}", "port": 29015}],
                            "cluster_port": 29015, "connected_to": peers, "hostname": name.replace("_", "-"),
                            "http_admin_port": 8080, "reql_port": self.port if index == 0 else 28015,
                            "time_connected": started},
                "process": {"argv": ["rethinkdb", "--bind", "all", "--cache-size", "128"],
                            "cache_size_mb": 128, "pid": os.getpid() + index, "time_started": started,
                            "version": "rethinkdb 2.4.4~0bookworm (x86_64-linux-gnu) (GCC 12.2.0)"}}

    def stats(self, tables: list[TableData]) -> list[dict[str, Any]]:
        uptime = max(time.time() - self.started, 1.0)
        rows: list[dict[str, Any]] = [{"id": ["cluster"], "query_engine": {
            "client_connections": self.client_connections, "clients_active": min(1, self.client_connections),
            "queries_per_sec": round(self.queries_total / uptime, 3),
            "read_docs_per_sec": round(self.read_docs_total / uptime, 3),
            "written_docs_per_sec": round(self.written_docs_total / uptime, 3)}}]
        rows.append({"id": ["server", self.server_id], "server": self.server_name, "query_engine": {
            "client_connections": self.client_connections, "clients_active": min(1, self.client_connections),
            "queries_per_sec": round(self.queries_total / uptime, 3), "queries_total": self.queries_total,
            "read_docs_per_sec": round(self.read_docs_total / uptime, 3),
            "read_docs_total": self.read_docs_total,
            "written_docs_per_sec": round(self.written_docs_total / uptime, 3),
            "written_docs_total": self.written_docs_total}})
        for t in tables:
            rows.append({"id": ["table", t.id], "db": t.db, "table": t.name,
                         "query_engine": {"read_docs_per_sec": 0, "written_docs_per_sec": 0}})
        for t in tables:
            rows.append({"id": ["table_server", t.id, self.server_id], "db": t.db, "table": t.name,
                         "server": self.server_name,
                         "query_engine": {"read_docs_per_sec": 0, "read_docs_total": 0,
                                          "written_docs_per_sec": 0, "written_docs_total": 0},
                         "storage_engine": {"cache": {"in_use_bytes": 4096 * (1 + len(t.rows))},
                                            "disk": {"read_bytes_per_sec": 0, "read_bytes_total": 0,
                                                     "written_bytes_per_sec": 0, "written_bytes_total": 0,
                                                     "space_usage": {"metadata_bytes": 2097152,
                                                                     "data_bytes": 512 * len(t.rows),
                                                                     "garbage_bytes": 0,
                                                                     "preallocated_bytes": 2097152}}}})
        return rows

    def system_rows(self, name: str, identifier_format: str = "name") -> list[dict[str, Any]]:
        """All rows of ``rethinkdb.<name>`` (``name`` must be in SYSTEM_TABLES)."""
        uuids = identifier_format == "uuid"
        with self.lock:
            tables = [t for db in sorted(self.dbs) for _, t in sorted(self.dbs[db].items())]
            dbs = sorted(self.dbs)
        topology = self.topology()
        if name == "server_status":
            return [self.server_status(server, topology, uuids) for server in topology.connected]
        if name == "server_config":
            return [{"cache_size_mb": 128, "id": self.server_id_of(server), "name": server, "tags": ["default"]}
                    for server in topology.connected]
        if name == "cluster_config":
            return [{"heartbeat_timeout_secs": 10, "id": "heartbeat"}]
        if name == "db_config":
            return [self.db_config(db) for db in dbs]
        if name == "table_config":
            return [self.table_config(t, uuids, topology) for t in tables]
        if name == "table_status":
            return [self.table_status(t, uuids, topology) for t in tables]
        if name == "current_issues":
            return self.current_issues(uuids)
        if name == "stats":
            return self.stats(tables)
        if name == "users":
            return [{"id": "admin", "password": self.has_password and not self.faults.active(FAULT_NO_PASSWORD)}]
        # jobs, logs and permissions: empty is a valid, healthy answer.
        return []
