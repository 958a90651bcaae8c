"""The history database: one SQLite file (stdlib ``sqlite3``) of run summaries and their results.

Several ``mgn verify`` processes may write it at once: WAL journal (readers never block the
writer), a busy timeout, and every write one ``BEGIN IMMEDIATE`` transaction (schema, insert,
prune), so a run is recorded whole or not at all. Everything written comes from a report that is
already redacted, and passes the run's redactor once more on its way in.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import MgnVerifyError
from . import one_line

if TYPE_CHECKING:
    from .._report import RunReport

__all__ = ["SCHEMA_VERSION", "CheckRow", "HistoryError", "NoRunsError", "RunRow", "Store", "open_store", "record"]

#: Bumped on any incompatible change of the tables below.
SCHEMA_VERSION = 1
#: How long a writer waits for another one before giving up (a warning, never a failed run).
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the id users see, never reused after pruning
    run_id TEXT NOT NULL UNIQUE,            -- the JSON report's run.id
    started_at TEXT NOT NULL,               -- ISO 8601, UTC
    duration_s REAL NOT NULL,
    argv TEXT NOT NULL,                     -- JSON list, redacted
    exit_code INTEGER NOT NULL,
    counts TEXT NOT NULL,                   -- JSON {status: n}
    total INTEGER NOT NULL,
    selection TEXT NOT NULL                 -- JSON list
);
CREATE INDEX IF NOT EXISTS runs_by_exit_code ON runs (exit_code, seq);
CREATE TABLE IF NOT EXISTS results (
    run_seq INTEGER NOT NULL REFERENCES runs (seq),
    position INTEGER NOT NULL,
    check_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    duration_s REAL NOT NULL,
    PRIMARY KEY (run_seq, position)
);
"""

_RUN_COLUMNS = "seq, run_id, started_at, duration_s, argv, exit_code, counts, total, selection"


class HistoryError(MgnVerifyError):
    """The history database cannot answer: no such run, corrupt, of another schema."""


class NoRunsError(HistoryError):
    """Nothing recorded yet: no database file, or one a first run is still creating."""


@dataclass(frozen=True, slots=True)
class RunRow:
    """One recorded run's summary; ``seq`` is the id ``mgn verify history`` prints."""

    seq: int
    run_id: str
    started_at: str
    duration_s: float
    argv: list[str]
    exit_code: int
    counts: dict[str, int]
    total: int
    selection: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.seq, "run_id": self.run_id, "started_at": self.started_at,
                "duration_s": self.duration_s, "argv": self.argv, "exit_code": self.exit_code,
                "counts": self.counts, "total": self.total, "selection": self.selection}


@dataclass(frozen=True, slots=True)
class CheckRow:
    id: str
    status: str
    message: str
    duration_s: float


def record(path: Path, report: RunReport, redact: Callable[[str], str], keep: int) -> bool:
    """Write ``report`` (summary and results) and prune to the ``keep`` newest runs, in one
    transaction; False when this run was already recorded. Raises ``sqlite3.Error``/``OSError``."""
    _prepare_file(path)
    # The busy timeout covers waiting for another writer, but not every lock of a database
    # switching to WAL at that moment (two first runs at once): those fail at once, so retry.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return _write(path, report, redact, keep)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _write(path: Path, report: RunReport, redact: Callable[[str], str], keep: int) -> bool:
    with closing(_connect(path)) as conn, _immediate(conn):
        _ensure_schema(conn)
        counts = {redact(status): n for status, n in report.counts().items()}
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (redact(report.run_id), report.started_at.isoformat(), report.duration_s,
             json.dumps([redact(arg) for arg in report.argv]), int(report.exit_code), json.dumps(counts),
             len(report.results), json.dumps([redact(item) for item in report.selection])))
        if cursor.rowcount == 0:  # the same report twice (a caller retrying): once is enough
            return False
        seq = cursor.lastrowid
        conn.executemany(
            "INSERT INTO results (run_seq, position, check_id, status, message, duration_s) VALUES (?, ?, ?, ?, ?, ?)",
            [(seq, position, redact(r.id), str(r.status), redact(r.message), r.duration_s)
             for position, r in enumerate(report.results)])
        _prune(conn, keep)
    return True


def open_store(path: Path) -> Store:
    """The database at ``path`` for reading; ``HistoryError`` when it cannot be read."""
    if not path.is_file():
        raise NoRunsError(f"no runs recorded yet in {path}")
    conn = _connect(path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] \
            if {"schema_version", "runs", "results"} <= tables else None
    except sqlite3.Error as exc:
        conn.close()
        raise HistoryError(f"cannot read the history database {path}: {one_line(exc)}") from None
    if version != SCHEMA_VERSION:
        conn.close()
        if not tables:  # created by a first run still writing it
            raise NoRunsError(f"no runs recorded yet in {path}")
        if version is None:
            raise HistoryError(f"{path} is not an mgn history database")
        raise HistoryError(f"{path} has history schema version {version}; this mgn reads version {SCHEMA_VERSION}")
    return Store(conn, path)


class Store:
    """Read access to a history database (see ``open_store``); close it, or use ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._conn.close()

    def runs(self, limit: int | None = None) -> list[RunRow]:
        """Newest (last recorded) first."""
        return self._runs("ORDER BY seq DESC LIMIT ?", (-1 if limit is None else limit,))

    def run(self, seq: int) -> RunRow | None:
        found = self._runs("WHERE seq = ?", (seq,))
        return found[0] if found else None

    def runs_by_run_id(self, prefix: str) -> list[RunRow]:
        """Runs whose report ``run.id`` starts with ``prefix`` (at most two: enough to see ambiguity)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._runs("WHERE run_id LIKE ? ESCAPE '\\' ORDER BY seq DESC LIMIT 2", (escaped + "%",))

    def before(self, seq: int, *, green: bool = False) -> RunRow | None:
        """The newest run recorded before ``seq`` (with ``green``: one that exited 0)."""
        where = "WHERE seq < ? AND exit_code = 0" if green else "WHERE seq < ?"
        found = self._runs(where + " ORDER BY seq DESC LIMIT 1", (seq,))
        return found[0] if found else None

    def results(self, seq: int) -> list[CheckRow]:
        """A run's results in report order."""
        rows = self._execute("SELECT check_id, status, message, duration_s FROM results WHERE run_seq = ? "
                             "ORDER BY position", (seq,))
        return [CheckRow(*row) for row in rows]

    def _runs(self, clause: str, params: tuple[Any, ...]) -> list[RunRow]:
        rows = self._execute(f"SELECT {_RUN_COLUMNS} FROM runs {clause}", params)
        return [RunRow(seq, run_id, started, duration, json.loads(argv), code, json.loads(counts), total,
                       json.loads(selection))
                for seq, run_id, started, duration, argv, code, counts, total, selection in rows]

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except (sqlite3.Error, ValueError) as exc:  # ValueError: a JSON column that does not parse
            raise HistoryError(f"cannot read the history database {self.path}: {one_line(exc)}") from None


def _prepare_file(path: Path) -> None:
    """Create the directory (0700) and an empty database file (0600) before SQLite does, so
    neither is readable by others (SQLite gives the -wal and -shm files the database's mode)."""
    if path.parent.exists() and not path.parent.is_dir():  # mkdir would only say "file exists"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; writes use BEGIN IMMEDIATE (see _immediate).
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, holding the write lock from its start (so two writers queue on the
    busy timeout instead of one failing to upgrade a read lock)."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: once per database
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):  # SQLite may have rolled it back itself (a full disk)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    if version is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    elif version != SCHEMA_VERSION:
        raise HistoryError(f"history schema version {version}; this mgn writes version {SCHEMA_VERSION}")


def _prune(conn: sqlite3.Connection, keep: int) -> None:
    """Drop all but the ``keep`` newest runs (and their results)."""
    row = conn.execute("SELECT seq FROM runs ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep,)).fetchone()
    if row is not None:
        conn.execute("DELETE FROM results WHERE run_seq <= ?", row)
        conn.execute("DELETE FROM runs WHERE seq <= ?", row)
