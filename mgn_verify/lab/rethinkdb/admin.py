"""Table access, administration and write terms of the lab RethinkDB simulator.

``ClusterOps`` is the base of the term evaluator: it resolves databases and tables (with the
real server's error texts), and implements db/table create/drop, config, wait, insert,
update and delete. Results have the shapes the 2.4 server returns.
"""

from __future__ import annotations

import abc
import json
import re
import threading
import time
import uuid
from typing import Any

from mgn_verify.lab.rethinkdb.system import (
    READINESS_LEVELS,
    SYSTEM_DB,
    SYSTEM_TABLES,
    ClusterState,
    TableData,
    row_key,
)
from mgn_verify.lab.rethinkdb.values import (
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
from mgn_verify.lab.rethinkdb.wire import E_OP_FAILED, ConnectionClosed, ReqlFailure

__all__ = ["ClusterOps", "return_changes_mode"]

_WAIT_POLL = 0.05  # the server backs off from 0.1 s up to 5 s; the lab answers sooner


def _whole_seconds(value: Any) -> int:
    """``timeout`` is read with ``as_int<uint64_t>``: a fraction is an error (datum.cc)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise failure(f"Expected type NUMBER but found {type_name(value)}.")
    if value != int(value):
        raise failure(f"Number not an integer: {value:.20g}")
    if value < 0:
        raise failure(f"Number not an unsigned integer: {value:.20g}")
    return int(value)


def return_changes_mode(o: dict[str, Any]) -> str:
    """``return_changes``: false (no changes), true (changed rows) or "always" (every row)."""
    value = o.get("return_changes", False)
    if value is True or value is False or value == "always":
        return "always" if value == "always" else "yes" if value else "no"
    raise failure(f"Invalid return_changes value `{json.dumps(value)}` (options are `true`, `false`, and `'always'`.)")

_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise failure(f"{kind} name `{name}` invalid (Use A-Z, a-z, 0-9, _ and - only).")


class ClusterOps(abc.ABC):
    """Database/table resolution and the administrative and write terms.

    The term evaluator (``reql.Evaluator``) derives from this and supplies how a
    datum and a function are evaluated; the admin terms need both for their arguments.
    """

    def __init__(self, state: ClusterState, stopping: threading.Event) -> None:
        self.state = state
        self.stopping = stopping
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
                rows = [dict(r) for r in self.readable(ref).rows.values()]
            self.state.read_docs_total += len(rows)
        return rows

    def _unavailable(self, t: TableData, op: str) -> ReqlFailure:
        view = self.state.view(t)
        if view.states[view.primary] == "disconnected":
            return failure(f'Cannot perform {op}: primary replica for shard ["", +inf) not available', E_OP_FAILED)
        # exec_primary.cc: reads and writes both need the primary in contact with a majority.
        tail = ("The read was not performed, you can do an outdated read using `read_mode=\"outdated\"`."
                if op == "read" else "The write was not performed.")
        return failure(f"Cannot perform {op}: The primary replica isn't connected to a quorum of replicas. {tail}",
                       E_OP_FAILED)

    def readable(self, ref: TableRef) -> TableData:
        t = self.table(ref)
        level = "ready_for_outdated_reads" if ref.read_mode == "outdated" else "ready_for_reads"
        if not self.state.readiness(t)[level]:
            raise self._unavailable(t, "read")
        return t

    def writable(self, ref: TableRef) -> TableData:
        if ref.db == SYSTEM_DB:
            raise failure(f"It's illegal to write to the `{SYSTEM_DB}.{ref.name}` table.", E_OP_FAILED)
        t = self.table(ref)
        if not self.state.readiness(t)["ready_for_writes"]:
            raise self._unavailable(t, "write")
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
            raise failure(f"Unknown table readiness state: '{level}', must be one of 'ready_for_outdated_reads', "
                          "'ready_for_reads', 'ready_for_writes', or 'all_replicas_ready'")
        if not a:
            raise failure("`wait` can only be called on a table or database.")
        target = a[0]
        tables = list(self.db_tables(target.name).values()) if isinstance(target, DbRef) else [
            self.table(self._tref(target))]
        timeout = o.get("timeout")
        deadline = None if timeout is None else time.monotonic() + _whole_seconds(timeout)
        # Like the server: no `timeout`, no limit; it returns when the tables are ready.
        while not all(self.state.readiness(t)[level] for t in tables if self._exists(t)):
            if self.stopping.wait(_WAIT_POLL):
                raise ConnectionClosed  # the server is going away: drop the connection
            if deadline is not None and time.monotonic() >= deadline:
                raise failure("Timed out while waiting for tables.", E_OP_FAILED)
        return {"ready": sum(1 for t in tables if self._exists(t))}

    def _exists(self, t: TableData) -> bool:
        with self.state.lock:
            return self.state.dbs.get(t.db, {}).get(t.name) is t

    def _insert(self, a: list[Any], o: dict[str, Any]) -> dict[str, Any]:
        ref = self._tref(a[0])
        docs = self.datum(a[1])
        docs = docs if isinstance(docs, list) else [docs]
        conflict = o.get("conflict", "error")
        out = _WriteResult(return_changes_mode(o))
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
                if old is not None and conflict not in ("replace", "update"):
                    out.error(old, doc, f"Duplicate primary key `{t.primary_key}`:\n{pretty(old)}\n{pretty(doc)}")
                    continue
                new = doc if old is None or conflict == "replace" else {**old, **doc}
                t.rows[key] = new
                out.replaced(old, new)
            self.state.written_docs_total += out.counts["inserted"] + out.counts["replaced"]
        result = out.result()
        if generated:
            result["generated_keys"] = generated
        return result

    def _selection(self, v: Any) -> tuple[TableRef, list[dict[str, Any]]]:
        """The rows a write acts on; a point or table write needs no read quorum, only a write one."""
        if isinstance(v, SingleRow):
            return v.table, [v.row] if v.row is not None else []
        if isinstance(v, TableRef):
            with self.state.lock:
                return v, [dict(r) for r in self.table(v).rows.values()]
        if isinstance(v, Stream) and v.table is not None:
            return v.table, v.rows
        raise failure(f"Expected type SELECTION but found {type_name(v)}.")

    def _delete(self, a: list[Any], o: dict[str, Any]) -> dict[str, Any]:
        ref, rows = self._selection(a[0])
        out = _WriteResult(return_changes_mode(o))
        with self.state.lock:
            t = self.writable(ref)
            for r in rows:
                old = t.rows.pop(row_key(r[t.primary_key]), None)
                out.replaced(old, None)
            self.state.written_docs_total += out.counts["deleted"]
        if not rows and isinstance(a[0], SingleRow):
            out.replaced(None, None)  # deleting a missing row: skipped
        return out.result()

    def _update(self, a: list[Any], o: dict[str, Any], s: dict[Any, Any]) -> dict[str, Any]:
        ref, rows = self._selection(a[0])
        out = _WriteResult(return_changes_mode(o))
        with self.state.lock:
            t = self.writable(ref)
            for r in rows:
                patch = self.call(a[1], [r], s) if isinstance(a[1], Func) else self.datum(a[1])
                new = {**r, **patch}
                t.rows[row_key(r[t.primary_key])] = new
                out.replaced(r, new)
            self.state.written_docs_total += out.counts["replaced"]
        if not rows and isinstance(a[0], SingleRow):
            out.replaced(None, None)
        return out.result()


class _WriteResult:
    """The stats a write returns, merged over its rows as the server does (table_common.cc):
    ``return_changes`` true lists changed rows, "always" every row (errors with ``error``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.counts: dict[str, int] = dict.fromkeys(WRITE_RESULT, 0)
        self.changes: list[dict[str, Any]] = []
        self.first_error: str | None = None

    def replaced(self, old: Any, new: Any) -> None:
        changed = old != new
        if old is None:
            self.counts["skipped" if new is None else "inserted"] += 1
        else:
            self.counts["deleted" if new is None else "replaced" if changed else "unchanged"] += 1
        if self.mode == "always" or (self.mode == "yes" and changed):
            self.changes.append({"new_val": new, "old_val": old})

    def error(self, old: Any, new: Any, message: str) -> None:
        self.counts["errors"] += 1
        if self.first_error is None:
            self.first_error = message
        if self.mode == "always":
            self.changes.append({"error": message, "fake_new_val": new, "new_val": old, "old_val": old})

    def result(self) -> dict[str, Any]:
        result: dict[str, Any] = dict(self.counts)
        if self.first_error is not None:
            result["first_error"] = self.first_error
        if self.mode != "no":
            result["changes"] = self.changes
        return result
