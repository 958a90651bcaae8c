"""Value types of the lab RethinkDB simulator's ReQL evaluator, and small shared helpers.

A query evaluates to a plain JSON datum or to one of these wrappers, which remember where
the data came from (a database, a table, one row of a table) so that writes and top-level
streaming can act on it, as the server's ``val_t`` kinds do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from mgn_verify.lab.rethinkdb.wire import E_QUERY_LOGIC, R_COMPILE_ERROR, ReqlFailure

__all__ = ["WRITE_RESULT", "DbRef", "Func", "SingleRow", "Stream", "TableRef", "compile_failure",
           "failure", "pretty", "truthy", "type_name"]

WRITE_RESULT: Final = ("deleted", "errors", "inserted", "replaced", "skipped", "unchanged")


@dataclass(frozen=True)
class DbRef:
    name: str


@dataclass(frozen=True)
class TableRef:
    db: str
    name: str
    identifier_format: str = "name"
    read_mode: str = "single"  # "outdated" reads need no quorum


@dataclass(frozen=True)
class SingleRow:
    """``table.get(key)``: a datum that still knows where it lives (for delete/update)."""

    table: TableRef
    key: Any
    row: dict[str, Any] | None


@dataclass
class Stream:
    """A sequence result; sent as SUCCESS_PARTIAL/SEQUENCE batches at top level."""

    rows: list[Any]
    table: TableRef | None = None  # set while it is still a selection of one table


@dataclass(frozen=True)
class Func:
    params: list[int]
    body: Any


def failure(message: str, error_type: int = E_QUERY_LOGIC) -> ReqlFailure:
    return ReqlFailure(message, error_type=error_type)


def compile_failure(message: str) -> ReqlFailure:
    return ReqlFailure(message, response_type=R_COMPILE_ERROR)


def pretty(value: Any) -> str:
    return json.dumps(value, indent="\t", sort_keys=True)


def type_name(v: Any) -> str:
    if isinstance(v, DbRef):
        return "DATABASE"
    if isinstance(v, TableRef):
        return "TABLE"
    if isinstance(v, SingleRow):
        return "SELECTION<OBJECT>"
    if isinstance(v, Stream):
        return "SELECTION<STREAM>" if v.table else "STREAM"
    if isinstance(v, Func):
        return "FUNCTION"
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "BOOL"
    if isinstance(v, int | float):
        return "NUMBER"
    if isinstance(v, str):
        return "STRING"
    if isinstance(v, list):
        return "ARRAY"
    if isinstance(v, dict) and v.get("$reql_type$") == "TIME":
        return "PTYPE<TIME>"
    return "OBJECT"


def truthy(v: Any) -> bool:
    return v is not None and v is not False

