"""Protocol-faithful RethinkDB 2.4 server simulator for the GuildNet lab.

The real ``rethinkdb`` Python driver connects to it unchanged: V1_0 handshake with real
SCRAM-SHA-256, token/length/JSON query frames, cursors in batches, and the error responses
the real server sends (protocols.md §1). One daemon thread accepts connections and one
daemon thread serves each client (the listener, its ``rethinkdb.down`` switch and the clean
stop are :class:`~mgn_verify.lab._serving.ReopenableServer`'s, as for every lab simulator).
Faults are read from the shared ``faults`` object on every connection and query, so injecting
or clearing one takes effect without a restart.

Nothing runs at import time; ``start()`` binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab._serving import ReopenableServer, ServedSimulator
from mgn_verify.lab.rethinkdb.reql import Evaluator, check_global_optargs
from mgn_verify.lab.rethinkdb.system import FAULT_NO_PASSWORD, ClusterState, FaultView, reql_time
from mgn_verify.lab.rethinkdb.topology import (
    FAULT_CRITICAL_ISSUE,
    FAULT_REPLICA_LAGGING,
    FAULT_REPLICA_UNREACHABLE,
    FAULT_TABLE_NOT_READY,
)
from mgn_verify.lab.rethinkdb.values import DbRef, Stream
from mgn_verify.lab.rethinkdb.wire import (
    Q_CONTINUE,
    Q_NOREPLY_WAIT,
    Q_SERVER_INFO,
    Q_START,
    Q_STOP,
    R_CLIENT_ERROR,
    R_SERVER_INFO,
    R_SUCCESS_ATOM,
    R_SUCCESS_PARTIAL,
    R_SUCCESS_SEQUENCE,
    R_WAIT_COMPLETE,
    ConnectionClosed,
    HandshakeFailed,
    ReqlFailure,
    ScramCredentials,
    encode_response,
    read_frame,
    run_handshake,
)

__all__ = ["RethinkDBSimulator"]

FAULT_DOWN: Final = "rethinkdb.down"
FAULT_BAD_PASSWORD: Final = "rethinkdb.bad_password"
FAULT_SLOW: Final = "rethinkdb.slow"

Databases = Mapping[str, Mapping[str, Iterable[Mapping[str, Any]]]]


def _default_databases(cluster_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """A fresh GuildNet-like layout: `test` (every fresh server has it), a `guildnet` db, and one
    per-organisation database, ``org_<cluster>__default``, with the meta tables the Host App
    creates (guildnet-host-app.md §4.4)."""
    org = re.sub(r"[^a-z0-9_-]", "_", cluster_id.lower()) or "default"
    return {
        "test": {},
        "guildnet": {
            "workspaces": [{"id": "ws-demo", "name": "demo", "image": "codercom/code-server:latest",
                            "status": "Running"}],
            "audit": [],
        },
        f"org_{org}__default": {
            "_schemas": [],
            "_audit": [],
            "_info": [{"id": "db", "name": "default", "description": "lab database",
                       "created_at": reql_time(1_700_000_000.0)}],
        },
    }


class RethinkDBSimulator(ServedSimulator):
    """A single-server RethinkDB 2.4.4 on 127.0.0.1, good enough for health checks.

    :param faults: anything with ``active(name) -> bool``; a private ``FaultSet`` if omitted.
    :param password: the `admin` password (empty means none, as on a fresh server).
    :param databases: ``{db: {table: [rows]}}`` to pre-create (primary key ``id``);
        defaults to a GuildNet-like layout. The `rethinkdb` system db always exists.
    :param cluster_id: the GuildNet cluster it serves: names the default ``org_<cluster>__default``.
    :param batch_size: rows per cursor batch; small values force SUCCESS_PARTIAL batches.
    :param not_ready_table: ``(db, table)`` ("table A") that ``rethinkdb.critical_issue`` and
        ``rethinkdb.table_not_ready`` degrade; defaults to the first table of GuildNet's ``org_*``
        databases by name (else the first user table).
    :param replica_table: ``(db, table)`` ("table B") that ``rethinkdb.replica_lagging`` and
        ``rethinkdb.replica_unreachable`` degrade; defaults to the next such table.

    Faults (see ``rethinkdb.topology`` for what each does to the cluster): ``rethinkdb.down``,
    ``rethinkdb.bad_password`` (the server's admin password is no longer the configured one),
    ``rethinkdb.no_password`` (admin has no password: only an empty one is accepted),
    ``rethinkdb.slow``, ``rethinkdb.critical_issue``, ``rethinkdb.table_not_ready``,
    ``rethinkdb.replica_lagging`` and ``rethinkdb.replica_unreachable``.
    :param slow_delay: extra seconds before each answer while ``rethinkdb.slow`` is active.
    """

    FAULTS: ClassVar[frozenset[str]] = frozenset(
        {FAULT_DOWN, FAULT_BAD_PASSWORD, FAULT_CRITICAL_ISSUE, FAULT_TABLE_NOT_READY, FAULT_SLOW,
         FAULT_REPLICA_LAGGING, FAULT_REPLICA_UNREACHABLE, FAULT_NO_PASSWORD})
    host: Final = "127.0.0.1"

    def __init__(self, faults: FaultView | None = None, password: str = "", *,
                 databases: Databases | None = None, batch_size: int = 1000,
                 server_name: str = "rethinkdb_0", not_ready_table: tuple[str, str] | None = None,
                 replica_table: tuple[str, str] | None = None, cluster_id: str = "lab",
                 slow_delay: float = 0.5, iterations: int = 4096) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.faults: FaultView = faults if faults is not None else FaultSet(self.FAULTS)
        self.password = password
        self.batch_size = batch_size
        self.slow_delay = slow_delay
        self.state = ClusterState(self.faults, _default_databases(cluster_id) if databases is None else databases,
                                  server_name=server_name, has_password=bool(password),
                                  not_ready_table=not_ready_table, replica_table=replica_table)
        # Derived once, like the server's stored credentials; the fault swaps in another password.
        self._creds = ScramCredentials.derive(password, iterations=iterations)
        self._rotated_creds = ScramCredentials.derive(password + "-rotated-by-fault", iterations=iterations)
        self._empty_creds = ScramCredentials.derive("", iterations=iterations)
        self._server = ReopenableServer(
            self._serve_client, is_down=lambda: self.faults.active(FAULT_DOWN), host=self.host,
            name="rethinkdb-sim")

    # -- lifecycle (stop/sync_faults/port/running and the context manager: ServedSimulator) ---

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def connection_count(self) -> int:
        """Client sockets currently open (handshaking or authenticated)."""
        return self._server.connection_count

    @property
    def stopping(self) -> threading.Event:
        """Set while stopping: waits in queries (``wait()``, the slow fault) end at once."""
        return self._server.stopping

    def start(self) -> None:
        if self.running:
            raise RuntimeError("RethinkDBSimulator already started")
        super().start()  # started while `down`: refuse from the first connection attempt
        self.state.port = self.port

    # -- one client -------------------------------------------------------------------------

    def _serve_client(self, sock: socket.socket, _address: object, _listener: socketserver.BaseServer) -> None:
        authenticated = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            creds = self._creds
            if self.faults.active(FAULT_NO_PASSWORD):
                creds = self._empty_creds  # admin has no password: only an empty one matches
            elif self.faults.active(FAULT_BAD_PASSWORD):
                creds = self._rotated_creds
            run_handshake(sock, {"admin": creds})
            authenticated = True
            with self.state.lock:
                self.state.client_connections += 1
            _Session(self, sock).run()
        except (ConnectionClosed, HandshakeFailed, OSError):
            pass  # client went away, failed auth, or stop()/`down` closed the socket
        finally:
            if authenticated:
                with self.state.lock:
                    self.state.client_connections -= 1


class _Session:
    """The query phase of one authenticated connection."""

    def __init__(self, sim: RethinkDBSimulator, sock: socket.socket) -> None:
        self.sim = sim
        self.sock = sock
        self.evaluator = Evaluator(sim.state, sim.stopping)
        self.cursors: dict[int, list[Any]] = {}  # token -> rows not yet sent

    def run(self) -> None:
        while True:
            token, payload = read_frame(self.sock)
            if self.sim.faults.active(FAULT_DOWN) or self.sim.stopping.is_set():
                raise ConnectionClosed
            if self.sim.faults.active(FAULT_SLOW) and self.sim.stopping.wait(self.sim.slow_delay):
                raise ConnectionClosed
            reply = self.handle(token, payload)
            if reply is not None:
                self.sock.sendall(reply)

    def client_error(self, token: int, message: str) -> bytes:
        return encode_response(token, R_CLIENT_ERROR, [message])

    def handle(self, token: int, payload: bytes) -> bytes | None:
        try:
            query = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self.client_error(token, "Client is buggy (failed to deserialize query).")
        if not isinstance(query, list) or not query or not isinstance(query[0], int):
            return self.client_error(token, "Client is buggy (failed to deserialize query).")
        qtype = query[0]
        if qtype == Q_START:
            return self.start(token, query)
        if qtype == Q_CONTINUE:
            rows = self.cursors.get(token)
            if rows is None:
                # Also answers the driver's stray prefetch CONTINUE (protocols.md §1.4).
                return self.client_error(token, f"Token {token} not in stream cache.")
            return self.next_batch(token, rows)
        if qtype == Q_STOP:
            if self.cursors.pop(token, None) is None:
                return self.client_error(token, f"Token {token} not in stream cache.")
            return encode_response(token, R_SUCCESS_SEQUENCE, [])
        if qtype == Q_NOREPLY_WAIT:
            # Queries run one at a time per connection, so every noreply query is done.
            return encode_response(token, R_WAIT_COMPLETE, [])
        if qtype == Q_SERVER_INFO:
            info = {"id": self.sim.state.server_id, "name": self.sim.state.server_name, "proxy": False}
            return encode_response(token, R_SERVER_INFO, [info])
        return self.client_error(token, f"Unrecognized QueryType: {qtype}.")

    def start(self, token: int, query: list[Any]) -> bytes | None:
        if token in self.cursors:
            return self.client_error(token, f"ERROR: duplicate token {token}")
        term = query[1] if len(query) > 1 else None
        raw_opts = query[2] if len(query) > 2 and isinstance(query[2], dict) else {}
        with self.sim.state.lock:
            self.sim.state.queries_total += 1
        noreply = False
        try:
            self.evaluator.check(term)
            check_global_optargs(raw_opts)
            self.evaluator.check(raw_opts)
            opts = {k: self.evaluator.ev(v, {}) for k, v in raw_opts.items()}
            noreply = opts.get("noreply") is True
            db = opts.get("db")
            result = self.evaluator.run(term, db.name if isinstance(db, DbRef) else "test")
        except ReqlFailure as exc:
            if noreply:
                return None
            return encode_response(token, exc.response_type, [exc.message], error_type=exc.error_type)
        if noreply:
            return None
        if isinstance(result, Stream):
            return self.next_batch(token, result.rows)
        return encode_response(token, R_SUCCESS_ATOM, [result])

    def next_batch(self, token: int, rows: list[Any]) -> bytes:
        size = self.sim.batch_size
        batch, rest = rows[:size], rows[size:]
        if rest:
            self.cursors[token] = rest
            return encode_response(token, R_SUCCESS_PARTIAL, batch)
        self.cursors.pop(token, None)
        return encode_response(token, R_SUCCESS_SEQUENCE, batch)
