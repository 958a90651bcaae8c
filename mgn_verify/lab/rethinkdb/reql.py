"""A small ReQL term evaluator for the lab RethinkDB simulator.

It covers what a health checker and a write round-trip need (protocols.md §1.3 term table):
datum terms, db/table navigation, system tables, status/wait/config, get/filter/count and
friends, insert/update/delete, db and table create/drop. The whole term tree is checked
before evaluation, as the real server compiles a query first: an unsupported term anywhere
gives a COMPILE_ERROR, never a partial run or a hang.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from mgn_verify.lab.rethinkdb.admin import ClusterOps
from mgn_verify.lab.rethinkdb.system import SYSTEM_DB, SYSTEM_TABLES, ClusterState, reql_time, row_key
from mgn_verify.lab.rethinkdb.terms import (
    AND,
    BRACKET,
    BRANCH,
    COERCE_TO,
    CONFIG,
    COUNT,
    DATUM,
    DB,
    DB_CREATE,
    DB_DROP,
    DB_LIST,
    DEFAULT,
    DEFINED_TERMS,
    DELETE,
    EQ,
    ERROR,
    FILTER,
    FUNC,
    FUNCALL,
    GE,
    GET,
    GET_ALL,
    GET_FIELD,
    GT,
    HAS_FIELDS,
    IMPLICIT_VAR,
    INSERT,
    IS_EMPTY,
    KEYS,
    LE,
    LIMIT,
    LT,
    MAKE_ARRAY,
    MAKE_OBJ,
    MAP,
    NE,
    NOT,
    NOW,
    NTH,
    OPTARGS,
    OR,
    PLUCK,
    SKIP,
    STATUS,
    SUPPORTED,
    TABLE,
    TABLE_CREATE,
    TABLE_DROP,
    TABLE_LIST,
    TYPE_OF,
    UPDATE,
    VAR,
    WAIT,
    WITHOUT,
    check_global_optargs,
)
from mgn_verify.lab.rethinkdb.values import (
    DbRef,
    Func,
    SingleRow,
    Stream,
    TableRef,
    compile_failure,
    failure,
    pretty,
    truthy,
    type_name,
)
from mgn_verify.lab.rethinkdb.wire import E_NON_EXISTENCE, E_OP_FAILED, E_USER, ReqlFailure

__all__ = ["Evaluator", "Stream", "check_global_optargs"]


class Evaluator(ClusterOps):
    """Evaluates one START term against the cluster state."""

    def __init__(self, state: ClusterState, stopping: threading.Event) -> None:
        super().__init__(state, stopping)
        self._h = self._handlers()

    # -- compile step ---------------------------------------------------------------------

    def check(self, term: Any) -> None:
        """Reject unsupported terms anywhere in the tree (a COMPILE_ERROR, like the server)."""
        if isinstance(term, dict):
            for v in term.values():
                self.check(v)
            return
        if not isinstance(term, list):
            return
        if not term or not isinstance(term[0], int) or isinstance(term[0], bool):
            raise compile_failure("Expected a TermType as a NUMBER but found ARRAY.")
        if term[0] not in SUPPORTED:
            if term[0] in DEFINED_TERMS:
                # A real server would run it; the lab says so plainly instead of guessing.
                raise compile_failure(f"TermType {term[0]} is not supported by the lab RethinkDB simulator.")
            raise compile_failure(f"Unrecognized TermType: {term[0]}.")
        if term[0] == DATUM:
            return
        for arg in term[1] if len(term) > 1 and isinstance(term[1], list) else []:
            self.check(arg)
        if len(term) > 2 and isinstance(term[2], dict):
            allowed = OPTARGS.get(term[0], frozenset())
            for name, value in term[2].items():
                if term[0] != MAKE_OBJ and name not in allowed:
                    raise compile_failure(f"Unrecognized optional argument `{name}`.")
                self.check(value)

    # -- evaluation -------------------------------------------------------------------------

    def run(self, term: Any, default_db: str) -> Any:
        """Evaluate a top-level term; returns a datum or a Stream."""
        self.default_db = default_db
        value = self.ev(term, {})
        if isinstance(value, TableRef):
            return Stream(self.table_rows(value), value)
        if isinstance(value, SingleRow):
            return self.datum(value)
        if isinstance(value, DbRef | Func):
            raise failure("Query result must be of type DATUM, GROUPED_DATA, or STREAM "
                          f"(got {type_name(value)}).")
        return value

    def ev(self, term: Any, scope: dict[Any, Any]) -> Any:
        if isinstance(term, dict):
            return {k: self.datum(self.ev(v, scope)) for k, v in term.items()}
        if not isinstance(term, list):
            return term
        ttype = term[0]
        if ttype == DATUM:
            return term[1]
        raw_args: list[Any] = term[1] if len(term) > 1 else []
        raw_opts: dict[str, Any] = term[2] if len(term) > 2 else {}
        if ttype == FUNC:
            return Func(self.datum(self.ev(raw_args[0], scope)), raw_args[1])
        if ttype == VAR:
            return scope[raw_args[0]]
        if ttype == IMPLICIT_VAR:
            if "implicit" not in scope:
                raise compile_failure("r.row is not defined in this context.")
            return scope["implicit"]
        if ttype in (BRANCH, AND, OR, DEFAULT):
            return self.lazy(ttype, raw_args, scope)
        args = [self.ev(a, scope) for a in raw_args]
        opts = {k: self.datum(self.ev(v, scope)) for k, v in raw_opts.items()}
        handler = self._h.get(ttype)
        if handler is None:  # pragma: no cover - check() has already rejected it
            raise compile_failure(f"Unrecognized TermType: {ttype}.")
        return handler(args, opts, scope)

    def lazy(self, ttype: int, raw: list[Any], scope: dict[Any, Any]) -> Any:
        """Terms that must not evaluate every argument up front."""
        if ttype == BRANCH:
            for i in range(0, len(raw) - 1, 2):
                if truthy(self.datum(self.ev(raw[i], scope))):
                    return self.ev(raw[i + 1], scope)
            return self.ev(raw[-1], scope)
        if ttype in (AND, OR):
            value: Any = ttype == AND
            for a in raw:
                value = self.datum(self.ev(a, scope))
                if truthy(value) != (ttype == AND):
                    return value
            return value
        try:  # DEFAULT: swallow NON_EXISTENCE errors and null
            value = self.ev(raw[0], scope)
            if self.datum(value) is not None:
                return value
        except ReqlFailure as exc:
            if exc.error_type != E_NON_EXISTENCE:
                raise
        fallback = self.ev(raw[1], scope)
        return self.call(fallback, [None], scope) if isinstance(fallback, Func) else fallback

    def datum(self, v: Any) -> Any:
        if isinstance(v, SingleRow):
            if v.table.db != SYSTEM_DB:
                self.readable(v.table)  # reading the row (not deleting it) needs a read quorum
            return v.row
        if isinstance(v, TableRef):
            return self.table_rows(v)
        if isinstance(v, Stream):
            return v.rows
        if isinstance(v, DbRef | Func):
            raise failure(f"Expected type DATUM but found {type_name(v)}.")
        return v

    def seq(self, v: Any) -> Stream:
        if isinstance(v, TableRef):
            return Stream(self.table_rows(v), v)
        if isinstance(v, Stream):
            return v
        if isinstance(v, list):
            return Stream(list(v))
        raise failure(f"Cannot convert {type_name(v)} to SEQUENCE")

    def call(self, f: Any, args: list[Any], scope: dict[Any, Any]) -> Any:
        if not isinstance(f, Func):
            return f  # r.expr(x) used where a function is allowed behaves like lambda: x
        inner = dict(scope)
        for var, value in zip(f.params, args, strict=False):
            inner[var] = value
        if len(args) == 1:
            inner["implicit"] = args[0]
        return self.datum(self.ev(f.body, inner))

    # -- db/table access --------------------------------------------------------------------


    def _handlers(self) -> dict[int, Callable[[list[Any], dict[str, Any], dict[Any, Any]], Any]]:
        return {
            MAKE_ARRAY: lambda a, o, s: [self.datum(x) for x in a],
            MAKE_OBJ: lambda a, o, s: dict(o),
            ERROR: lambda a, o, s: self._error(a),
            DB: lambda a, o, s: self._db(a),
            TABLE: self._table,
            GET: lambda a, o, s: self._get(a),
            GET_ALL: lambda a, o, s: self._get_all(a, o),
            EQ: lambda a, o, s: all(self.datum(a[0]) == self.datum(x) for x in a[1:]),
            NE: lambda a, o, s: not all(self.datum(a[0]) == self.datum(x) for x in a[1:]),
            LT: lambda a, o, s: self._cmp(a, lambda x, y: x < y),
            LE: lambda a, o, s: self._cmp(a, lambda x, y: x <= y),
            GT: lambda a, o, s: self._cmp(a, lambda x, y: x > y),
            GE: lambda a, o, s: self._cmp(a, lambda x, y: x >= y),
            NOT: lambda a, o, s: not truthy(self.datum(a[0])),
            GET_FIELD: lambda a, o, s: self._field(a[0], a[1]),
            BRACKET: lambda a, o, s: self._bracket(a[0], self.datum(a[1])),
            HAS_FIELDS: lambda a, o, s: self._has_fields(a),
            PLUCK: lambda a, o, s: self._project(a, keep=True),
            WITHOUT: lambda a, o, s: self._project(a, keep=False),
            MAP: lambda a, o, s: self._map(a, s),
            FILTER: lambda a, o, s: self._filter(a, o, s),
            COUNT: lambda a, o, s: self._count(a, s),
            IS_EMPTY: lambda a, o, s: len(self.seq(a[0]).rows) == 0,
            NTH: lambda a, o, s: self._nth(a),
            LIMIT: lambda a, o, s: self._slice(a[0], 0, int(self.datum(a[1]))),
            SKIP: lambda a, o, s: self._slice(a[0], int(self.datum(a[1])), None),
            COERCE_TO: lambda a, o, s: self._coerce(a),
            TYPE_OF: lambda a, o, s: type_name(a[0]),
            KEYS: lambda a, o, s: sorted(self._object(a[0])),
            FUNCALL: lambda a, o, s: self.call(a[0], a[1:], s),
            NOW: lambda a, o, s: reql_time(time.time()),
            DB_LIST: lambda a, o, s: sorted({SYSTEM_DB, *self.state.dbs}),
            TABLE_LIST: lambda a, o, s: self._table_list(a),
            DB_CREATE: lambda a, o, s: self._db_create(a),
            DB_DROP: lambda a, o, s: self._db_drop(a),
            TABLE_CREATE: lambda a, o, s: self._table_create(a, o),
            TABLE_DROP: lambda a, o, s: self._table_drop(a),
            CONFIG: lambda a, o, s: self._config(a),
            STATUS: lambda a, o, s: self.state.table_status(self.table(self._tref(a[0]))),
            WAIT: lambda a, o, s: self._wait(a, o),
            INSERT: lambda a, o, s: self._insert(a, o),
            DELETE: lambda a, o, s: self._delete(a, o),
            UPDATE: lambda a, o, s: self._update(a, o, s),
        }

    def _error(self, a: list[Any]) -> Any:
        raise failure(str(self.datum(a[0])) if a else "", E_USER)

    def _table(self, a: list[Any], o: dict[str, Any], s: dict[Any, Any]) -> TableRef:
        db = a[0].name if len(a) == 2 and isinstance(a[0], DbRef) else self.default_db
        name = self.datum(a[-1])
        if db == SYSTEM_DB:
            if name not in SYSTEM_TABLES:
                raise failure(f"Table `{SYSTEM_DB}.{name}` does not exist.", E_OP_FAILED)
        else:
            self.table(TableRef(db, name))  # existence check now, like the server
        read_mode = str(o.get("read_mode", "single"))
        if read_mode not in ("single", "majority", "outdated", "_debug_direct"):
            raise failure(f"Read mode `{read_mode}` unrecognized (options are \"majority\", \"single\", and "
                          "\"outdated\").")
        return TableRef(db, name, str(o.get("identifier_format", "name")), read_mode)

    def _get(self, a: list[Any]) -> SingleRow:
        ref, key = self._tref(a[0]), self.datum(a[1])
        if ref.db == SYSTEM_DB:
            pk = "id"
            rows = {row_key(r[pk]): r for r in self.table_rows(ref)}
        else:
            with self.state.lock:
                t = self.table(ref)
                pk, rows = t.primary_key, t.rows
        row = rows.get(row_key(key))
        return SingleRow(ref, key, dict(row) if row is not None else None)

    def _get_all(self, a: list[Any], o: dict[str, Any]) -> Stream:
        ref = self._tref(a[0])
        if o.get("index", "id") != "id":
            raise failure(f"Index `{o['index']}` was not found on table `{ref.db}.{ref.name}`.", E_OP_FAILED)
        rows = [self._get([ref, k]).row for k in a[1:]]
        return Stream([r for r in rows if r is not None], ref)

    def _cmp(self, a: list[Any], op: Callable[[Any, Any], bool]) -> bool:
        vals = [self.datum(x) for x in a]
        for x, y in itertools.pairwise(vals):
            if type_name(x) != type_name(y):
                if not op(type_name(x), type_name(y)):  # the server orders types by name
                    return False
            elif not op(x, y):
                return False
        return True

    def _object(self, v: Any) -> dict[str, Any]:
        d = self.datum(v)
        if not isinstance(d, dict):
            raise failure(f"Cannot perform get_field on a non-object non-sequence `{json.dumps(d)}`.")
        return d

    def _field(self, v: Any, name: Any) -> Any:
        if isinstance(v, TableRef | Stream) or isinstance(self.datum(v), list):
            return Stream([r[name] for r in self.seq(v if not isinstance(v, SingleRow) else v.row).rows
                           if isinstance(r, dict) and name in r])
        obj = self._object(v)
        if name not in obj:
            raise failure(f"No attribute `{name}` in object:\n{pretty(obj)}", E_NON_EXISTENCE)
        return obj[name]

    def _bracket(self, v: Any, key: Any) -> Any:
        if isinstance(key, int) and not isinstance(key, bool):
            return self._nth([v, key])
        return self._field(v, key)

    def _has_fields(self, a: list[Any]) -> Any:
        names = [self.datum(x) for x in a[1:]]
        if isinstance(a[0], TableRef | Stream) or isinstance(self.datum(a[0]), list):
            return Stream([r for r in self.seq(a[0]).rows if all(n in r for n in names)])
        return all(n in self._object(a[0]) for n in names)

    def _project(self, a: list[Any], keep: bool) -> Any:
        names: list[str] = []
        for x in a[1:]:
            d = self.datum(x)
            names.extend(d if isinstance(d, list) else [d])

        def one(r: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in r.items() if (k in names) == keep}

        if isinstance(a[0], TableRef | Stream):
            return Stream([one(r) for r in self.seq(a[0]).rows])
        d = self.datum(a[0])
        return [one(r) for r in d] if isinstance(d, list) else one(self._object(d))

    def _map(self, a: list[Any], s: dict[Any, Any]) -> Any:
        out = [self.call(a[1], [r], s) for r in self.seq(a[0]).rows]
        is_array = isinstance(self.datum(a[0]), list) and not isinstance(a[0], TableRef | Stream)
        return out if is_array else Stream(out)

    def _matches(self, pred: Any, row: Any, s: dict[Any, Any]) -> bool:
        if isinstance(pred, Func):
            try:
                return truthy(self.call(pred, [row], s))
            except ReqlFailure as exc:
                if exc.error_type == E_NON_EXISTENCE:  # filter's default is false
                    return False
                raise
        if isinstance(pred, dict):
            return isinstance(row, dict) and all(
                k in row and (self._matches(v, row[k], s) if isinstance(v, dict) else row[k] == v)
                for k, v in pred.items())
        return truthy(pred)

    def _filter(self, a: list[Any], o: dict[str, Any], s: dict[Any, Any]) -> Any:
        stream = self.seq(a[0])
        pred = a[1] if isinstance(a[1], Func) else self.datum(a[1])
        rows = [r for r in stream.rows if self._matches(pred, r, s)]
        return rows if isinstance(a[0], list) else Stream(rows, stream.table)

    def _count(self, a: list[Any], s: dict[Any, Any]) -> int:
        if not isinstance(a[0], TableRef | Stream | list):
            d = self.datum(a[0])
            if isinstance(d, str | dict):
                return len(d)
        rows = self.seq(a[0]).rows
        if len(a) == 1:
            return len(rows)
        pred = a[1] if isinstance(a[1], Func) else self.datum(a[1])
        if isinstance(pred, Func):
            return sum(1 for r in rows if truthy(self.call(pred, [r], s)))
        return sum(1 for r in rows if r == pred)

    def _nth(self, a: list[Any]) -> Any:
        rows, i = self.seq(a[0] if not isinstance(a[0], SingleRow) else a[0].row).rows, int(self.datum(a[1]))
        if not -len(rows) <= i < len(rows):
            raise failure(f"Index out of bounds: {i}", E_NON_EXISTENCE)
        return rows[i]

    def _slice(self, v: Any, start: int, n: int | None) -> Any:
        rows = self.seq(v).rows[start:] if n is None else self.seq(v).rows[start:start + n]
        return rows if isinstance(v, list) else Stream(rows, self.seq(v).table)

    def _coerce(self, a: list[Any]) -> Any:
        target, value = str(self.datum(a[1])).lower(), self.datum(a[0])
        if target == "array":
            return list(value.items()) if isinstance(value, dict) else self.seq(value).rows
        if target == "string":
            return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if target == "number" and isinstance(value, str):
            try:
                return float(value) if "." in value or "e" in value.lower() else int(value)
            except ValueError:
                raise failure(f'Could not coerce `"{value}"` to NUMBER.') from None
        if target == "object" and isinstance(value, list):
            return {k: v for k, v in value}
        if target == type_name(value).lower():
            return value
        raise failure(f"Cannot coerce {type_name(value)} to {target.upper()}.")

