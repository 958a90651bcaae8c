"""In-memory cluster state of the lab RethinkDB simulator, and its `rethinkdb` system tables.

The row shapes follow ``protocols.md`` §1.5 (server 2.4.4). Fault state is read live from a
faults object on every call, so injecting ``rethinkdb.table_not_ready`` or
``rethinkdb.critical_issue`` changes the next read without a restart.
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

FAULT_TABLE_NOT_READY: Final = "rethinkdb.table_not_ready"
FAULT_CRITICAL_ISSUE: Final = "rethinkdb.critical_issue"

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
                 *, server_name: str, has_password: bool, not_ready_table: tuple[str, str] | None) -> None:
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
        self._not_ready = not_ready_table

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

    # -- readiness --------------------------------------------------------------------------

    def not_ready_table(self) -> TableData | None:
        """The table the ``table_not_ready`` fault degrades, if the fault is on."""
        if not self.faults.active(FAULT_TABLE_NOT_READY):
            return None
        with self.lock:
            if self._not_ready is not None:
                db, name = self._not_ready
                return self.dbs.get(db, {}).get(name)
            # Default: the first user table in name order.
            for db in sorted(self.dbs):
                for name in sorted(self.dbs[db]):
                    return self.dbs[db][name]
        return None

    def readiness(self, table: TableData) -> dict[str, bool]:
        degraded = self.not_ready_table()
        if degraded is not None and degraded.id == table.id:
            # Readable but not writable: the primary replica is gone (the doc's example).
            return {"all_replicas_ready": False, "ready_for_outdated_reads": True,
                    "ready_for_reads": True, "ready_for_writes": False}
        return {level: True for level in READINESS_LEVELS}

    # -- system rows ------------------------------------------------------------------------

    def table_config(self, t: TableData, uuids: bool = False) -> dict[str, Any]:
        server = self.server_id if uuids else self.server_name
        return {"db": self.db_ids[t.db] if uuids else t.db, "durability": "hard", "id": t.id,
                "indexes": [], "name": t.name, "primary_key": t.primary_key,
                "shards": [{"nonvoting_replicas": [], "primary_replica": server, "replicas": [server]}],
                "write_acks": "majority", "write_hook": None}

    def db_config(self, db: str) -> dict[str, Any]:
        return {"id": self.db_ids[db], "name": db}

    def table_status(self, t: TableData, uuids: bool = False) -> dict[str, Any]:
        status = self.readiness(t)
        server = self.server_id if uuids else self.server_name
        # Reads but no writes is what a replica waiting for a write quorum looks like.
        state = "ready" if status["all_replicas_ready"] else "waiting_for_quorum"
        return {"db": self.db_ids[t.db] if uuids else t.db, "id": t.id, "name": t.name,
                "raft_leader": server,
                "shards": [{"primary_replicas": [server],
                            "replicas": [{"server": server, "state": state}]}],
                "status": status}

    def _availability_issue(self, t: TableData, status: dict[str, Any], why: str) -> dict[str, Any]:
        info = {"db": t.db, "table": t.name, "shards": status["shards"], "status": status["status"],
                "raft_leader": status["raft_leader"]}
        return {"critical": True, "description": f"Table `{t.db}.{t.name}` is available for outdated and "
                f"up-to-date reads, but not writes. {why}",
                "id": stable_uuid("issue", t.id, why), "info": info, "type": "table_availability"}

    def current_issues(self) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = []
        with self.lock:
            tables = [t for db in sorted(self.dbs) for _, t in sorted(self.dbs[db].items())]
        degraded = self.not_ready_table()
        if degraded is not None:
            # A real server reports any table below write-readiness as a critical issue.
            issues.append(self._availability_issue(
                degraded, self.table_status(degraded),
                "The primary replica for one or more shards is not ready."))
        if self.faults.active(FAULT_CRITICAL_ISSUE) and tables:
            t = tables[0]
            status = self.table_status(t)
            status["status"] = {"all_replicas_ready": False, "ready_for_outdated_reads": True,
                                "ready_for_reads": True, "ready_for_writes": False}
            issues.append(self._availability_issue(
                t, status, "The following servers are not reachable: server2"))
        return issues

    def server_status(self) -> dict[str, Any]:
        started = reql_time(self.started)
        return {"id": self.server_id, "name": self.server_name,
                "network": {"canonical_addresses": [{"host": "127.0.0.1", "port": 29015}],
                            "cluster_port": 29015, "connected_to": {}, "hostname": "rethinkdb-0",
                            "http_admin_port": 8080, "reql_port": self.port,
                            "time_connected": started},
                "process": {"argv": ["rethinkdb", "--bind", "all", "--cache-size", "128"],
                            "cache_size_mb": 128, "pid": os.getpid(), "time_started": started,
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
        if name == "server_status":
            return [self.server_status()]
        if name == "server_config":
            return [{"cache_size_mb": 128, "id": self.server_id, "name": self.server_name,
                     "tags": ["default"]}]
        if name == "cluster_config":
            return [{"heartbeat_timeout_secs": 10, "id": "heartbeat"}]
        if name == "db_config":
            return [self.db_config(db) for db in dbs]
        if name == "table_config":
            return [self.table_config(t, uuids) for t in tables]
        if name == "table_status":
            return [self.table_status(t, uuids) for t in tables]
        if name == "current_issues":
            return self.current_issues()
        if name == "stats":
            return self.stats(tables)
        if name == "users":
            return [{"id": "admin", "password": self.has_password}]
        # jobs, logs and permissions: empty is a valid, healthy answer.
        return []
