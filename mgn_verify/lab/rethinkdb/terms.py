"""ReQL term numbers, and the optional arguments each term (and each query) accepts, for the
lab RethinkDB simulator's compile step. Numbers are the driver's ``ql2_pb2.py``; the optional
argument sets are the server's ``optargspec_t`` per term (``src/rdb_protocol/terms/``) and its
global list (``src/rdb_protocol/optargs.cc``).
"""

from __future__ import annotations

from typing import Any, Final

from mgn_verify.lab.rethinkdb.values import compile_failure

# Term numbers (driver ql2_pb2.py).
DATUM, MAKE_ARRAY, MAKE_OBJ, VAR, ERROR, IMPLICIT_VAR = 1, 2, 3, 10, 12, 13
DB, TABLE, GET, GET_ALL, EQ, NE, LT, LE, GT, GE, NOT = 14, 15, 16, 78, 17, 18, 19, 20, 21, 22, 23
AND, OR, GET_FIELD, HAS_FIELDS, PLUCK, WITHOUT, MAP, FILTER = 67, 66, 31, 32, 33, 34, 38, 39
COUNT, IS_EMPTY, NTH, LIMIT, SKIP, BRACKET, COERCE_TO, TYPE_OF, DEFAULT = 43, 86, 45, 71, 70, 170, 51, 52, 92
DB_CREATE, DB_DROP, DB_LIST, TABLE_CREATE, TABLE_DROP, TABLE_LIST = 57, 58, 59, 60, 61, 62
CONFIG, STATUS, WAIT, FUNC, FUNCALL, BRANCH, NOW, KEYS = 174, 175, 177, 69, 64, 65, 103, 94
INSERT, DELETE, UPDATE = 56, 54, 53

SUPPORTED: Final = frozenset({
    DATUM, MAKE_ARRAY, MAKE_OBJ, VAR, ERROR, IMPLICIT_VAR, DB, TABLE, GET, GET_ALL, EQ, NE, LT, LE, GT,
    GE, NOT, AND, OR, GET_FIELD, HAS_FIELDS, PLUCK, WITHOUT, MAP, FILTER, COUNT, IS_EMPTY, NTH, LIMIT,
    SKIP, BRACKET, COERCE_TO, TYPE_OF, DEFAULT, DB_CREATE, DB_DROP, DB_LIST, TABLE_CREATE, TABLE_DROP,
    TABLE_LIST, CONFIG, STATUS, WAIT, FUNC, FUNCALL, BRANCH, NOW, KEYS, INSERT, DELETE, UPDATE,
})
# Every TermType the 2.4 protocol defines (1-196 minus a few gaps), to tell "unknown" from
# "real but not simulated" in the compile error.
DEFINED_TERMS: Final = frozenset(range(1, 197)) - {4, 5, 6, 7, 8, 9, 46, 47, 63, 178}

# The optional arguments each term accepts (the server's optargspec_t per term, rdb_protocol/terms/);
# any other is a compile error. MAKE_OBJ is absent: its "optargs" are the object's fields.
_WRITE_OPTARGS: Final = frozenset({"durability", "return_vals", "return_changes", "ignore_write_hook"})
OPTARGS: Final[dict[int, frozenset[str]]] = {
    TABLE: frozenset({"read_mode", "use_outdated", "identifier_format"}),
    GET_ALL: frozenset({"index"}),
    FILTER: frozenset({"default"}),
    TABLE_CREATE: frozenset({"primary_key", "shards", "replicas", "nonvoting_replica_tags",
                             "primary_replica_tag", "durability"}),
    WAIT: frozenset({"timeout", "wait_for"}),
    INSERT: _WRITE_OPTARGS | {"conflict"},
    UPDATE: _WRITE_OPTARGS | {"non_atomic"},
    DELETE: _WRITE_OPTARGS | {"non_atomic"},
    FUNCALL: frozenset({"_SHORTCUT_", "_EVAL_FLAGS_"}),
    **{t: frozenset({"_NO_RECURSE_"}) for t in (GET_FIELD, BRACKET, HAS_FIELDS, PLUCK, WITHOUT)},
}
# Global optargs (the query's own options) the server accepts (rdb_protocol/optargs.cc).
GLOBAL_OPTARGS: Final = frozenset({
    "_EVAL_FLAGS_", "_NO_RECURSE_", "_SHORTCUT_", "array_limit", "attempts", "auth", "base", "binary_format",
    "changefeed_queue_size", "conflict", "data", "db", "default", "default_timezone", "dry_run", "durability",
    "emergency_repair", "emit", "fill", "final_emit", "first_batch_scaledown_factor", "float", "geo",
    "geo_system", "group_format", "header", "identifier_format", "ignore_write_hook", "include_initial",
    "include_offsets", "include_states", "include_types", "index", "interleave", "ordered", "left_bound",
    "max_batch_bytes", "max_batch_rows", "max_batch_seconds", "max_dist", "max_results", "method",
    "min_batch_rows", "multi", "non_atomic", "nonvoting_replica_tags", "noreply", "num_vertices", "overwrite",
    "page", "page_limit", "params", "primary_key", "primary_replica_tag", "profile", "read_mode", "redirects",
    "replicas", "result_format", "return_changes", "return_vals", "right_bound", "shards", "squash",
    "time_format", "timeout", "unit", "use_outdated", "verify", "wait_for",
})


def check_global_optargs(opts: dict[str, Any]) -> None:
    """The query's own options: an unknown one is a compile error, as on the server."""
    for name in opts:
        if name not in GLOBAL_OPTARGS:
            raise compile_failure(f"Unrecognized global optional argument `{name}`.")
