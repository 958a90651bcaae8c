"""Table access, administration and write terms of the lab RethinkDB simulator.

``ClusterOps`` is the base of the term evaluator: it resolves databases and tables (with the
real server's error texts), and implements db/table create/drop, config, wait, insert,
update and delete. Results have the shapes the 2.4 server returns.
"""

from __future__ import annotations

import abc
import re
import threading
import time
import uuid
from typing import Any

from mgn_verify.lab.rethinkdb_system import (
    READINESS_LEVELS,
    SYSTEM_DB,
    SYSTEM_TABLES,
    ClusterState,
    TableData,
    row_key,
)
from mgn_verify.lab.rethinkdb_values import (
    WRITE_RESULT,
    DbRef,
    Func,
    SingleRow,
    Stream,
    TableRef,
    failure,
    pretty,
    type_name,
)
from mgn_verify.lab.rethinkdb_wire import E_OP_FAILED, ConnectionClosed

__all__ = ["ClusterOps"]

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise failure(f"{kind} name `{name}` invalid (Use A-Z, a-z, 0-9, _ and - only).")


class ClusterOps(abc.ABC):
    """Database/table resolution and the administrative and write terms.

    The term evaluator (``rethinkdb_reql.Evaluator``) derives from this and supplies how a
    datum and a function are evaluated; the admin terms need both for their arguments.
    """

    def __init__(self, state: ClusterState, stopping: threading.Event, wait_cap: float) -> None:
        self.state = state
        self.stopping = stopping
        self.wait_cap = wait_cap
        self.default_db = "test"

    @abc.abstractmethod
    def datum(self, v: Any) -> Any:
        """Evaluate a term that must produce a datum."""

    @abc.abstractmethod
    def call(self, f: Any, args: list[Any], scope: dict[Any, Any]) -> Any:
        """Apply a ReQL function term to ``args``."""

    def db_tables(self, db: str) -> dict[str, TableData]:
        tables = self.state.dbs.get(db)
        if tables is None:
            raise failure(f"Database `{db}` does not exist.", E_OP_FAILED)
        return tables

    def table(self, ref: TableRef) -> TableData:
        if ref.db == SYSTEM_DB:
            raise failure(f"Database `{SYSTEM_DB}` is special; the system tables in it don't "
                          "support this operation.", E_OP_FAILED)
        t = self.db_tables(ref.db).get(ref.name)
        if t is None:
            raise failure(f"Table `{ref.db}.{ref.name}` does not exist.", E_OP_FAILED)
        return t

    def table_rows(self, ref: TableRef) -> list[Any]:
        with self.state.lock:
            if ref.db == SYSTEM_DB:
                rows = self.state.system_rows(ref.name, ref.identifier_format)
            else:
                rows = [dict(r) for r in self.table(ref).rows.values()]
            self.state.read_docs_total += len(rows)
        return rows

    def writable(self, ref: TableRef) -> TableData:
        if ref.db == SYSTEM_DB:
            raise failure(f"It's illegal to write to the `{SYSTEM_DB}.{ref.name}` table.", E_OP_FAILED)
        t = self.table(ref)
        if not self.state.readiness(t)["ready_for_writes"]:
            raise failure('Cannot perform write: primary replica for shard ["", +inf) not available',
                          E_OP_FAILED)
        return t

    # -- handlers ---------------------------------------------------------------------------

    def _db(self, a: list[Any]) -> DbRef:
        name = self.datum(a[0])
        if not isinstance(name, str):
            raise failure(f"Expected type STRING but found {type_name(name)}.")
        return DbRef(name)

    def _tref(self, v: Any) -> TableRef:
        if not isinstance(v, TableRef):
            raise failure(f"Expected type TABLE but found {type_name(v)}.")
        return v


    def _table_list(self, a: list[Any]) -> list[str]:
        db = a[0].name if a and isinstance(a[0], DbRef) else self.default_db
        if db == SYSTEM_DB:
            return list(SYSTEM_TABLES)
        with self.state.lock:
            return sorted(self.db_tables(db))

    def _db_create(self, a: list[Any]) -> dict[str, Any]:
        name = self._db(a).name
        _check_name("Database", name)
        with self.state.lock:
            if name == SYSTEM_DB or name in self.state.dbs:
                raise failure(f"Database `{name}` already exists.", E_OP_FAILED)
            self.state.create_db(name)
            return {"config_changes": [{"new_val": self.state.db_config(name), "old_val": None}],
                    "dbs_created": 1}

    def _db_drop(self, a: list[Any]) -> dict[str, Any]:
        name = self._db(a).name
        with self.state.lock:
            if name == SYSTEM_DB:
                raise failure(f"Database `{SYSTEM_DB}` is special; you can't delete it.", E_OP_FAILED)
            tables = self.db_tables(name)
            old = self.state.db_config(name)
            del self.state.dbs[name]
            return {"config_changes": [{"new_val": None, "old_val": old}], "dbs_dropped": 1,
                    "tables_dropped": len(tables)}

    def _table_create(self, a: list[Any], o: dict[str, Any]) -> dict[str, Any]:
        db = a[0].name if len(a) == 2 and isinstance(a[0], DbRef) else self.default_db
        name = self.datum(a[-1])
        _check_name("Table", name)
        with self.state.lock:
            if db == SYSTEM_DB:
                raise failure(f"Database `{SYSTEM_DB}` is special; you can't create new tables in it.",
                              E_OP_FAILED)
            if name in self.db_tables(db):
                raise failure(f"Table `{db}.{name}` already exists.", E_OP_FAILED)
            t = self.state.create_table(db, name, str(o.get("primary_key", "id")))
            return {"config_changes": [{"new_val": self.state.table_config(t), "old_val": None}],
                    "tables_created": 1}

    def _table_drop(self, a: list[Any]) -> dict[str, Any]:
        db = a[0].name if len(a) == 2 and isinstance(a[0], DbRef) else self.default_db
        with self.state.lock:
            t = self.table(TableRef(db, self.datum(a[-1])))
            old = self.state.table_config(t)
            del self.state.dbs[db][t.name]
            return {"config_changes": [{"new_val": None, "old_val": old}], "tables_dropped": 1}

    def _config(self, a: list[Any]) -> dict[str, Any]:
        if isinstance(a[0], DbRef):
            self.db_tables(a[0].name)
            return self.state.db_config(a[0].name)
        return self.state.table_config(self.table(self._tref(a[0])))

    def _wait(self, a: list[Any], o: dict[str, Any]) -> dict[str, Any]:
        level = str(o.get("wait_for", "all_replicas_ready"))
        if level not in READINESS_LEVELS:
            raise failure(f"Unknown value for `wait_for`: `{level}`.")
        if a and isinstance(a[0], DbRef):
            tables = list(self.db_tables(a[0].name).values())
        else:
            tables = [self.table(self._tref(a[0]))] if a else []
        timeout = o.get("timeout")
        # The real server waits forever without `timeout`; the lab caps it so a test never hangs.
        budget = self.wait_cap if timeout is None else min(float(timeout), self.wait_cap)
        deadline = time.monotonic() + budget
        while not all(self.state.readiness(t)[level] for t in tables):
            if self.stopping.wait(0.02):
                raise ConnectionClosed  # the server is going away: drop the connection
            if time.monotonic() >= deadline:
                raise failure("Timed out while waiting for tables.", E_OP_FAILED)
        return {"ready": len(tables)}

    def _insert(self, a: list[Any], o: dict[str, Any]) -> dict[str, Any]:
        ref = self._tref(a[0])
        docs = self.datum(a[1])
        docs = docs if isinstance(docs, list) else [docs]
        conflict = o.get("conflict", "error")
        result: dict[str, Any] = dict.fromkeys(WRITE_RESULT, 0)
        generated: list[str] = []
        with self.state.lock:
            t = self.writable(ref)
            for doc in docs:
                if not isinstance(doc, dict):
                    raise failure(f"Expected type OBJECT but found {type_name(doc)}.")
                doc = dict(doc)
                if t.primary_key not in doc:
                    doc[t.primary_key] = str(uuid.uuid4())
                    generated.append(doc[t.primary_key])
                key = row_key(doc[t.primary_key])
                old = t.rows.get(key)
                if old is None:
                    t.rows[key] = doc
                    result["inserted"] += 1
                elif conflict == "replace" or conflict == "update":
                    new = doc if conflict == "replace" else {**old, **doc}
                    result["unchanged" if new == old else "replaced"] += 1
                    t.rows[key] = new
                else:
                    result["errors"] += 1
                    result.setdefault("first_error", f"Duplicate primary key `{t.primary_key}`:\n"
                                      f"{pretty(old)}\n{pretty(doc)}")
            self.state.written_docs_total += result["inserted"] + result["replaced"]
        if generated:
            result["generated_keys"] = generated
        return result

    def _selection(self, v: Any) -> tuple[TableRef, list[dict[str, Any]]]:
        if isinstance(v, SingleRow):
            return v.table, [v.row] if v.row is not None else []
        if isinstance(v, TableRef):
            return v, self.table_rows(v)
        if isinstance(v, Stream) and v.table is not None:
            return v.table, v.rows
        raise failure(f"Expected type SELECTION but found {type_name(v)}.")

    def _delete(self, a: list[Any]) -> dict[str, Any]:
        ref, rows = self._selection(a[0])
        result: dict[str, Any] = dict.fromkeys(WRITE_RESULT, 0)
        with self.state.lock:
            t = self.writable(ref)
            for r in rows:
                if t.rows.pop(row_key(r[t.primary_key]), None) is not None:
                    result["deleted"] += 1
            self.state.written_docs_total += result["deleted"]
        if not rows:
            result["skipped"] = 1 if isinstance(a[0], SingleRow) else 0
        return result

    def _update(self, a: list[Any], s: dict[Any, Any]) -> dict[str, Any]:
        ref, rows = self._selection(a[0])
        result: dict[str, Any] = dict.fromkeys(WRITE_RESULT, 0)
        with self.state.lock:
            t = self.writable(ref)
            for r in rows:
                patch = self.call(a[1], [r], s) if isinstance(a[1], Func) else self.datum(a[1])
                new = {**r, **patch}
                result["unchanged" if new == r else "replaced"] += 1
                t.rows[row_key(r[t.primary_key])] = new
            self.state.written_docs_total += result["replaced"]
        if not rows and isinstance(a[0], SingleRow):
            result["skipped"] = 1
        return result
