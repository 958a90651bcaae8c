"""The lab RethinkDB simulator, exercised with the real ``rethinkdb`` driver (and raw frames).

Every fault is injected, observed through the driver, cleared, and recovery is observed.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rethinkdb import RethinkDB
from rethinkdb.ast import ReQLDecoder, ReQLEncoder, RqlQuery
from rethinkdb.errors import (
    ReqlAuthError,
    ReqlDriverError,
    ReqlNonExistenceError,
    ReqlOpFailedError,
    ReqlQueryLogicError,
    ReqlServerCompileError,
    ReqlUserError,
)
from rethinkdb.handshake import HandshakeV1_0
from rethinkdb.net import DefaultConnection

from mgn_verify.lab._faults import FaultSet
from mgn_verify.lab.rethinkdb import RethinkDBSimulator
from tests.lab.helpers import open_fds, refused, wait_until

r = RethinkDB()
PASSWORD = "s3cret"
SYSTEM_TABLES = ["cluster_config", "current_issues", "db_config", "jobs", "logs", "permissions",
                 "server_config", "server_status", "stats", "table_config", "table_status", "users"]

Connect = Callable[..., DefaultConnection]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def faults() -> FaultSet:
    return FaultSet(RethinkDBSimulator.FAULTS)


@pytest.fixture
def sim(faults: FaultSet) -> Iterator[RethinkDBSimulator]:
    with RethinkDBSimulator(faults=faults, password=PASSWORD, batch_size=4,
                            slow_delay=0.3) as server:
        yield server


@pytest.fixture
def connect(sim: RethinkDBSimulator) -> Iterator[Connect]:
    opened: list[DefaultConnection] = []

    def _connect(**kwargs: Any) -> DefaultConnection:
        kwargs.setdefault("user", "admin")
        kwargs.setdefault("password", PASSWORD)
        conn = r.connect(sim.host, sim.port, timeout=5, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        if conn.is_open():
            conn.close(noreply_wait=False)


@pytest.fixture
def conn(connect: Connect) -> DefaultConnection:
    return connect()


class RawClient:
    """Just enough client to see the exact frames: the driver's own handshake, raw queries."""

    def __init__(self, host: str, port: int, password: str = PASSWORD) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        hs = HandshakeV1_0(ReQLDecoder(), ReQLEncoder(), host, port, "admin", password)
        response: bytes | None = None
        while True:
            request = hs.next_message(response)
            if request is None:
                break
            if request != "":
                self.sock.sendall(request)
            response = self._read_nul()

    def _read_nul(self) -> bytes:
        buf = b""
        while (ch := self.sock.recv(1)) != b"\x00":
            assert ch, "connection closed"
            buf += ch
        return buf

    def send(self, token: int, query: list[Any]) -> None:
        body = json.dumps(query).encode()
        self.sock.sendall(struct.pack("<QL", token, len(body)) + body)

    def recv(self) -> tuple[int, dict[str, Any]]:
        header = self._recv_exact(12)
        token, length = struct.unpack("<qL", header)
        return token, json.loads(self._recv_exact(length))

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    def query(self, token: int, query: list[Any]) -> dict[str, Any]:
        self.send(token, query)
        got_token, body = self.recv()
        assert got_token == token
        return body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(sim: RethinkDBSimulator) -> Iterator[RawClient]:
    client = RawClient(sim.host, sim.port)
    yield client
    client.close()


# -- handshake and authentication -----------------------------------------------------------


def test_connect_with_right_password_and_close(sim: RethinkDBSimulator) -> None:
    conn = r.connect(sim.host, sim.port, user="admin", password=PASSWORD, timeout=5)
    assert conn.is_open()
    info = conn.server()
    assert info == {"id": sim.state.server_id, "name": "rethinkdb_0", "proxy": False}
    conn.close()  # sends NOREPLY_WAIT and blocks until WAIT_COMPLETE
    assert not conn.is_open()


def test_wrong_password_is_reql_auth_error(sim: RethinkDBSimulator) -> None:
    with pytest.raises(ReqlAuthError) as exc:
        r.connect(sim.host, sim.port, user="admin", password="nope", timeout=5)
    assert str(exc.value) == f"Could not connect to 127.0.0.1:{sim.port}, Wrong password"


def test_missing_password_when_one_is_set(sim: RethinkDBSimulator) -> None:
    with pytest.raises(ReqlAuthError, match="Wrong password"):
        r.connect(sim.host, sim.port, timeout=5)


def test_unknown_user(sim: RethinkDBSimulator) -> None:
    with pytest.raises(ReqlAuthError, match="Unknown user"):
        r.connect(sim.host, sim.port, user="bob", password=PASSWORD, timeout=5)


def test_empty_password_server() -> None:
    with RethinkDBSimulator() as server:
        conn = r.connect(server.host, server.port, timeout=5)  # driver default: admin, ""
        assert "rethinkdb" in r.db_list().run(conn)
        assert list(r.db("rethinkdb").table("users").run(conn)) == [{"id": "admin", "password": False}]
        conn.close()
        with pytest.raises(ReqlAuthError, match="Wrong password"):
            r.connect(server.host, server.port, password="x", timeout=5)


def test_handshake_banner_and_bad_magic(sim: RethinkDBSimulator) -> None:
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"\xc3\xbd\xc2\x34")
        banner = s.recv(4096)
        assert banner == (b'{"max_protocol_version":0,"min_protocol_version":0,'
                          b'"server_version":"2.4.4","success":true}\x00')
        s.sendall(b'{"protocol_version":1,"authentication_method":"SCRAM-SHA-256",'
                  b'"authentication":"n,,n=admin,r=abc"}\x00')
        error = json.loads(s.recv(4096).rstrip(b"\x00"))
        assert error["success"] is False and error["error_code"] == 2
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"\x00\x00\x00\x00")
        assert s.recv(4096).startswith(b"ERROR: Received an unsupported protocol version.")


# -- basic reads ----------------------------------------------------------------------------


def test_db_list_and_table_list(conn: DefaultConnection) -> None:
    assert r.db_list().run(conn) == ["guildnet", "org_lab__default", "rethinkdb", "test"]
    assert r.db("rethinkdb").table_list().run(conn) == SYSTEM_TABLES
    assert r.db("guildnet").table_list().run(conn) == ["audit", "workspaces"]
    assert r.db("org_lab__default").table_list().run(conn) == ["_audit", "_info", "_schemas"]
    with pytest.raises(ReqlOpFailedError, match="Database `nope` does not exist"):
        r.db("nope").table_list().run(conn)


def _is_time(value: Any) -> bool:
    return hasattr(value, "tzinfo") and value.tzinfo is not None


@pytest.mark.parametrize("table", SYSTEM_TABLES)
def test_every_system_table_is_readable(conn: DefaultConnection, table: str) -> None:
    rows = list(r.db("rethinkdb").table(table).run(conn))
    assert r.db("rethinkdb").table(table).count().run(conn) == len(rows)
    assert all(isinstance(row, dict) for row in rows)


def test_system_table_shapes(conn: DefaultConnection, sim: RethinkDBSimulator) -> None:
    sys = r.db("rethinkdb")
    (status,) = list(sys.table("server_status").run(conn))
    assert set(status) == {"id", "name", "network", "process"}
    assert status["network"]["reql_port"] == sim.port
    assert set(status["network"]) >= {"canonical_addresses", "cluster_port", "connected_to", "hostname",
                                      "http_admin_port", "reql_port", "time_connected"}
    assert _is_time(status["network"]["time_connected"]) and _is_time(status["process"]["time_started"])
    assert status["process"]["version"].startswith("rethinkdb 2.4.4")

    (config,) = list(sys.table("server_config").run(conn))
    assert set(config) == {"id", "name", "tags", "cache_size_mb"} and config["id"] == status["id"]
    assert list(sys.table("cluster_config").run(conn)) == [{"id": "heartbeat", "heartbeat_timeout_secs": 10}]
    assert list(sys.table("current_issues").run(conn)) == []
    assert sys.table("current_issues").is_empty().run(conn) is True

    table_status = list(sys.table("table_status").run(conn))
    assert {(t["db"], t["name"]) for t in table_status} >= {("guildnet", "workspaces")}
    for row in table_status:
        assert set(row) == {"id", "db", "name", "raft_leader", "shards", "status"}
        assert row["status"] == {"all_replicas_ready": True, "ready_for_outdated_reads": True,
                                 "ready_for_reads": True, "ready_for_writes": True}
        assert row["shards"][0]["replicas"] == [{"server": "rethinkdb_0", "state": "ready"}]

    table_config = sys.table("table_config").filter({"db": "guildnet", "name": "workspaces"}).nth(0).run(conn)
    assert table_config["primary_key"] == "id"
    assert table_config["shards"][0]["primary_replica"] == "rethinkdb_0"
    assert {"id": sim.state.db_ids["guildnet"], "name": "guildnet"} in list(sys.table("db_config").run(conn))
    assert list(sys.table("users").run(conn)) == [{"id": "admin", "password": True}]

    cluster = sys.table("stats").get(["cluster"])["query_engine"].run(conn)
    assert set(cluster) == {"client_connections", "clients_active", "queries_per_sec", "read_docs_per_sec",
                            "written_docs_per_sec"}
    assert cluster["client_connections"] == 1
    server_stats = sys.table("stats").get(["server", status["id"]]).run(conn)
    assert server_stats["server"] == "rethinkdb_0" and "queries_total" in server_stats["query_engine"]


def test_health_checker_style_queries(conn: DefaultConnection) -> None:
    sys = r.db("rethinkdb")
    names = list(sys.table("server_status").map(lambda s: s["name"]).run(conn))
    assert names == ["rethinkdb_0"]
    assert list(sys.table("current_issues").pluck("type", "critical").run(conn)) == []
    assert sys.table("stats").filter({"id": ["cluster"]}).count().run(conn) == 1
    assert sys.table("server_config").get("no-such-server").run(conn) is None
    uuid_rows = list(sys.table("table_status", identifier_format="uuid").run(conn))
    assert all(row["db"] != "guildnet" for row in uuid_rows)
    assert r.expr([1, 2, 3]).count().run(conn) == 3
    assert r.expr({"a": {"b": 1}})["a"]["b"].run(conn) == 1
    assert r.expr({"a": 1}).keys().run(conn) == ["a"]
    assert r.expr({"a": 1})["missing"].default("fallback").run(conn) == "fallback"
    assert r.branch(r.expr(1) == 1, "yes", "no").run(conn) == "yes"


def test_status_and_wait(conn: DefaultConnection) -> None:
    status = r.db("guildnet").table("workspaces").status().run(conn)
    assert status["name"] == "workspaces" and status["status"]["ready_for_writes"] is True
    assert r.db("guildnet").table("workspaces").wait().run(conn) == {"ready": 1}
    assert r.db("guildnet").table("workspaces").wait(wait_for="ready_for_writes", timeout=5).run(conn) == {
        "ready": 1}
    assert r.db("guildnet").wait().run(conn) == {"ready": 2}
    assert r.db("guildnet").table("workspaces").config().run(conn)["name"] == "workspaces"


def test_default_db_from_connect(connect: Connect) -> None:
    conn = connect(db="guildnet")
    assert r.table("workspaces").get("ws-demo")["name"].run(conn) == "demo"
    assert r.table_list().run(conn) == ["audit", "workspaces"]


# -- cursors and query types ----------------------------------------------------------------


@pytest.fixture
def big_table(conn: DefaultConnection) -> str:
    r.db("test").table_create("big").run(conn)
    r.db("test").table("big").insert([{"id": i, "n": i % 3} for i in range(10)]).run(conn)
    return "big"


def test_cursor_over_several_batches(conn: DefaultConnection, big_table: str) -> None:
    rows = list(r.db("test").table(big_table).run(conn))  # batch_size=4: 4 + 4 + 2
    assert [row["id"] for row in rows] == list(range(10))
    # The connection is still healthy after the driver's stray prefetch CONTINUE.
    assert r.db("test").table(big_table).count().run(conn) == 10
    assert r.db("test").table(big_table).filter({"n": 0}).count().run(conn) == 4


def test_close_cursor_early(conn: DefaultConnection, big_table: str) -> None:
    cursor = r.db("test").table(big_table).run(conn)
    assert cursor.next()["id"] == 0
    cursor.close()  # sends STOP
    assert r.db("test").table(big_table).count().run(conn) == 10


def test_raw_frames_partial_sequence_stop(raw: RawClient, sim: RethinkDBSimulator) -> None:
    db_list = raw.query(0, [1, [59, []], {}])
    assert db_list == {"t": 1, "r": [["guildnet", "org_lab__default", "rethinkdb", "test"]]}
    raw.query(1, [1, [60, [[14, ["test"]], "raw"]], {}])
    raw.query(2, [1, [56, [[15, [[14, ["test"]], "raw"]], [2, [{"id": i} for i in range(9)]]]], {}])
    first = raw.query(3, [1, [15, [[14, ["test"]], "raw"]], {}])
    assert first["t"] == 3 and len(first["r"]) == 4 and first["n"] == [] and "e" not in first
    second = raw.query(3, [2])
    assert second["t"] == 3 and len(second["r"]) == 4
    last = raw.query(3, [2])
    assert last == {"t": 2, "r": [{"id": 8}], "n": []}
    stray = raw.query(3, [2])
    assert stray["t"] == 16 and stray["r"] == ["Token 3 not in stream cache."] and "e" not in stray
    # STOP mid-stream answers an empty SUCCESS_SEQUENCE and forgets the cursor.
    assert raw.query(4, [1, [15, [[14, ["test"]], "raw"]], {}])["t"] == 3
    assert raw.query(4, [3]) == {"t": 2, "r": [], "n": []}
    assert raw.query(4, [2])["t"] == 16
    assert raw.query(5, [4]) == {"t": 4, "r": []}
    assert raw.query(6, [5])["r"][0]["id"] == sim.state.server_id
    missing = raw.query(7, [1, [15, [[14, ["rethinkdb"]], "nope"]], {}])
    assert missing == {"t": 18, "e": 4100000, "r": ["Table `rethinkdb.nope` does not exist."], "b": []}


def test_noreply_and_noreply_wait(conn: DefaultConnection) -> None:
    r.db("test").table_create("nr").run(conn)
    assert r.db("test").table("nr").insert({"id": "x"}).run(conn, noreply=True) is None
    assert conn.noreply_wait() is None
    assert r.db("test").table("nr").get("x").run(conn) == {"id": "x"}


def test_insert_get_delete_round_trip(conn: DefaultConnection) -> None:
    created = r.db_create("scratch").run(conn)
    assert created["dbs_created"] == 1
    assert r.db("scratch").table_create("t").run(conn)["tables_created"] == 1
    t = r.db("scratch").table("t")
    result = t.insert({"id": "probe", "value": 42}).run(conn)
    assert result == {"deleted": 0, "errors": 0, "inserted": 1, "replaced": 0, "skipped": 0, "unchanged": 0}
    assert t.get("probe").run(conn) == {"id": "probe", "value": 42}
    duplicate = t.insert({"id": "probe"}).run(conn)
    assert duplicate["errors"] == 1 and duplicate["first_error"].startswith("Duplicate primary key `id`")
    generated = t.insert({"value": 1}).run(conn)
    assert len(generated["generated_keys"]) == 1
    assert t.get("probe").update({"value": 43}).run(conn)["replaced"] == 1
    assert t.get("probe").delete().run(conn)["deleted"] == 1
    assert t.get("probe").run(conn) is None
    assert r.db("scratch").table_drop("t").run(conn)["tables_dropped"] == 1
    assert r.db_drop("scratch").run(conn)["dbs_dropped"] == 1
    with pytest.raises(ReqlOpFailedError, match="Database `scratch` does not exist"):
        r.db("scratch").table_list().run(conn)


class _UnknownTerm(RqlQuery):  # type: ignore[misc]
    """A term number no RethinkDB knows, as a newer driver might send."""

    term_type = 9999

    def compose(self, args: list[Any], optargs: dict[str, Any]) -> str:
        return "r.unknown_term()"


def test_unknown_and_unsupported_terms_are_compile_errors(conn: DefaultConnection) -> None:
    with pytest.raises(ReqlServerCompileError, match="Unrecognized TermType: 9999"):
        _UnknownTerm().run(conn)
    with pytest.raises(ReqlServerCompileError, match="not supported"):
        r.js("1 + 1").run(conn)
    # Nested anywhere, it still fails at compile time, before anything runs.
    with pytest.raises(ReqlServerCompileError):
        r.db("test").table_create(r.js("'x'")).run(conn)
    assert "x" not in r.db("test").table_list().run(conn)


def test_runtime_errors_map_to_driver_exceptions(conn: DefaultConnection) -> None:
    with pytest.raises(ReqlOpFailedError, match=r"Table `guildnet\.nope` does not exist"):
        r.db("guildnet").table("nope").run(conn)
    with pytest.raises(ReqlNonExistenceError, match="No attribute `missing`"):
        r.expr({"a": 1})["missing"].run(conn)
    with pytest.raises(ReqlUserError, match="boom"):
        r.error("boom").run(conn)
    with pytest.raises(ReqlOpFailedError, match="already exists"):
        r.db_create("guildnet").run(conn)
    with pytest.raises(ReqlQueryLogicError, match="invalid"):
        r.db_create("bad name").run(conn)


# -- faults -----------------------------------------------------------------------------------


def test_fault_names() -> None:
    assert frozenset({
        "rethinkdb.down", "rethinkdb.bad_password", "rethinkdb.critical_issue", "rethinkdb.table_not_ready",
        "rethinkdb.slow", "rethinkdb.replica_lagging", "rethinkdb.replica_unreachable",
        "rethinkdb.no_password"}) == RethinkDBSimulator.FAULTS


# When the server drops a connection, the driver's SocketWrapper.close() gets ENOTCONN from
# shutdown(), logs it and forgets the socket without closing it (rethinkdb 2.4.10 net.py), so
# the garbage collector reports an unclosed socket. That is the driver's leak, not ours.
DRIVER_SOCKET_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning")


@DRIVER_SOCKET_LEAK
def test_fault_down_refuses_and_recovers_on_same_port(sim: RethinkDBSimulator, faults: FaultSet,
                                                      connect: Connect) -> None:
    port = sim.port
    before = connect()
    faults.inject("rethinkdb.down")
    sim.sync_faults()
    with pytest.raises(ReqlDriverError, match="Connection refused"):
        r.connect(sim.host, port, password=PASSWORD, timeout=5)
    with pytest.raises(ReqlDriverError):
        r.db_list().run(before)  # the open connection was dropped
    faults.clear("rethinkdb.down")
    sim.sync_faults()
    assert sim.port == port
    assert "rethinkdb" in r.db_list().run(connect())


def test_fault_down_without_sync_is_picked_up_by_the_poller(sim: RethinkDBSimulator,
                                                            faults: FaultSet) -> None:
    faults.inject("rethinkdb.down")
    wait_until(lambda: refused(sim.port, sim.host))
    faults.clear("rethinkdb.down")
    wait_until(lambda: not refused(sim.port, sim.host))


def test_started_while_down_refuses_at_once(faults: FaultSet) -> None:
    faults.inject("rethinkdb.down")
    with RethinkDBSimulator(faults=faults) as server:
        with pytest.raises(ReqlDriverError, match="Connection refused"):
            r.connect(server.host, server.port, timeout=5)
        faults.clear("rethinkdb.down")
        server.sync_faults()
        conn = r.connect(server.host, server.port, timeout=5)
        assert r.db_list().run(conn)
        conn.close()


def test_fault_bad_password(sim: RethinkDBSimulator, faults: FaultSet, connect: Connect) -> None:
    faults.inject("rethinkdb.bad_password")
    with pytest.raises(ReqlAuthError) as exc:
        connect()
    assert str(exc.value) == f"Could not connect to 127.0.0.1:{sim.port}, Wrong password"
    faults.clear("rethinkdb.bad_password")
    assert connect().is_open()


def test_fault_critical_issue(conn: DefaultConnection, faults: FaultSet) -> None:
    issues = r.db("rethinkdb").table("current_issues")
    faults.inject("rethinkdb.critical_issue")
    rows = list(issues.run(conn))
    assert len(rows) == 1
    issue = rows[0]
    assert issue["type"] == "table_availability" and issue["critical"] is True
    assert issue["description"] == (
        "Table `org_lab__default._audit` is available for outdated reads, but not up-to-date reads or writes. "
        "The following servers are not reachable: rethinkdb_1")
    assert set(issue) == {"id", "type", "critical", "info", "description"}
    assert list(issues.pluck("type", "critical").run(conn)) == [
        {"type": "table_availability", "critical": True}]
    # The server the issue names is one the cluster knows: a replica in the table's config,
    # "disconnected" in its status, and (being unreachable) absent from server_status.
    config = r.db("org_lab__default").table("_audit").config().run(conn)
    assert config["shards"][0]["replicas"] == ["rethinkdb_0", "rethinkdb_1"]
    status = r.db("org_lab__default").table("_audit").status().run(conn)
    assert status["shards"][0]["replicas"] == [{"server": "rethinkdb_0", "state": "waiting_for_quorum"},
                                               {"server": "rethinkdb_1", "state": "disconnected"}]
    assert status["raft_leader"] is None
    assert list(r.db("rethinkdb").table("server_status")["name"].run(conn)) == ["rethinkdb_0"]
    faults.clear("rethinkdb.critical_issue")
    assert issues.is_empty().run(conn) is True
    assert r.db("org_lab__default").table("_audit").config().run(conn)["shards"][0]["replicas"] == ["rethinkdb_0"]


def test_fault_table_not_ready(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.table_not_ready")
    statuses = {(row["db"], row["name"]): row["status"]
                for row in r.db("rethinkdb").table("table_status").run(conn)}
    degraded = [key for key, status in statuses.items() if not status["ready_for_writes"]]
    assert degraded == [("org_lab__default", "_audit")]
    table = r.db("org_lab__default").table("_audit")
    status = table.status().run(conn)
    assert status["status"] == {"all_replicas_ready": False, "ready_for_outdated_reads": True,
                                "ready_for_reads": False, "ready_for_writes": False}
    assert status["shards"][0]["replicas"][1] == {"server": "rethinkdb_2", "state": "backfilling"}
    started = time.monotonic()
    with pytest.raises(ReqlOpFailedError, match="Timed out while waiting for tables"):
        table.wait(wait_for="ready_for_writes", timeout=1).run(conn)
    assert time.monotonic() - started >= 1
    assert table.wait(wait_for="ready_for_outdated_reads", timeout=1).run(conn) == {"ready": 1}
    with pytest.raises(ReqlOpFailedError, match=r"isn't connected to a quorum of replicas\. The write was not"):
        table.insert({"id": "w"}).run(conn)
    # No server is unreachable, so a real server raises no issue (issues/table.cc) ...
    assert r.db("rethinkdb").table("current_issues").is_empty().run(conn) is True
    # ... and the backfilling server is connected.
    assert list(r.db("rethinkdb").table("server_status")["name"].run(conn)) == ["rethinkdb_0", "rethinkdb_2"]

    faults.clear("rethinkdb.table_not_ready")
    assert table.wait(timeout=1).run(conn) == {"ready": 1}
    assert table.insert({"id": "w"}).run(conn)["inserted"] == 1


def test_fault_table_not_ready_recovers_during_wait(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.table_not_ready")
    timer = threading.Timer(0.2, faults.clear, args=("rethinkdb.table_not_ready",))
    timer.start()
    try:
        assert r.db("org_lab__default").wait(timeout=2).run(conn) == {"ready": 3}
    finally:
        timer.join()


def test_fault_replica_lagging(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.replica_lagging")
    table = r.db("org_lab__default").table("_info")
    status = table.status().run(conn)
    assert status["status"] == {"all_replicas_ready": False, "ready_for_outdated_reads": True,
                                "ready_for_reads": True, "ready_for_writes": True}
    assert status["shards"][0]["replicas"] == [
        {"server": "rethinkdb_0", "state": "ready"}, {"server": "rethinkdb_1", "state": "ready"},
        {"server": "rethinkdb_2", "state": "backfilling"}]
    assert table.insert({"id": "lag"}).run(conn)["inserted"] == 1  # a majority is ready
    # Every replica's server is connected: the real server raises no issue for a lagging replica.
    assert list(r.db("rethinkdb").table("current_issues").run(conn)) == []
    assert list(r.db("rethinkdb").table("server_status")["name"].run(conn)) == [
        "rethinkdb_0", "rethinkdb_1", "rethinkdb_2"]


def test_fault_replica_unreachable(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.replica_unreachable")
    (issue,) = list(r.db("rethinkdb").table("current_issues").run(conn))
    assert issue["critical"] is False and issue["type"] == "table_availability"
    assert issue["description"] == ("Table `org_lab__default._info` is available for all operations, but some "
                                    "replicas are not ready. The following servers are not reachable: rethinkdb_2")
    assert issue["info"]["status"]["ready_for_writes"] is True
    assert r.db("org_lab__default").table("_info").insert({"id": "ok"}).run(conn)["inserted"] == 1
    (server0, server1) = list(r.db("rethinkdb").table("server_status").run(conn))
    assert server0["network"]["connected_to"] == {"rethinkdb_1": True}
    assert server1["name"] == "rethinkdb_1"


def test_fault_no_password(sim: RethinkDBSimulator, faults: FaultSet, connect: Connect) -> None:
    faults.inject("rethinkdb.no_password")
    conn = connect(password="")
    assert list(r.db("rethinkdb").table("users").run(conn)) == [{"id": "admin", "password": False}]
    with pytest.raises(ReqlAuthError, match="Wrong password"):
        connect()  # the configured password is no longer admin's
    faults.clear("rethinkdb.no_password")
    assert list(r.db("rethinkdb").table("users").run(connect())) == [{"id": "admin", "password": True}]
    with pytest.raises(ReqlAuthError, match="Wrong password"):
        connect(password="")


def test_fault_slow(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.slow")
    started = time.monotonic()
    r.db_list().run(conn)
    assert time.monotonic() - started >= 0.3
    faults.clear("rethinkdb.slow")
    started = time.monotonic()
    r.db_list().run(conn)
    assert time.monotonic() - started < 0.3


# -- regressions: the simulator honours what a client sends, as the server does --------------


def test_wait_without_timeout_waits_past_the_old_cap_and_returns_when_ready(
        conn: DefaultConnection, faults: FaultSet) -> None:
    # The lab once gave up after 5 s; a real server waits as long as it takes.
    faults.inject("rethinkdb.table_not_ready")
    timer = threading.Timer(5.5, faults.clear, args=("rethinkdb.table_not_ready",))
    started = time.monotonic()
    timer.start()
    try:
        assert r.db("org_lab__default").table("_audit").wait().run(conn) == {"ready": 1}
    finally:
        timer.join()
    assert time.monotonic() - started >= 5.5


def test_wait_rejects_what_the_server_rejects(conn: DefaultConnection) -> None:
    table = r.db("org_lab__default").table("_audit")
    with pytest.raises(ReqlQueryLogicError, match=r"^Number not an integer: 0\.2999999999999999889"):
        table.wait(timeout=0.3).run(conn)  # the server reads `timeout` as a whole number of seconds
    with pytest.raises(ReqlQueryLogicError, match="Unknown table readiness state: 'soon', must be one of"):
        table.wait(wait_for="soon").run(conn)


def test_unknown_optional_arguments_are_compile_errors(conn: DefaultConnection) -> None:
    table = r.db("org_lab__default").table("_audit")
    with pytest.raises(ReqlServerCompileError, match=r"^Unrecognized optional argument `bogus` in:"):
        table.insert({"id": "x"}, bogus=True).run(conn)
    with pytest.raises(ReqlServerCompileError, match="Unrecognized optional argument `timeout`"):
        r.db("org_lab__default").table("_audit", timeout=1).run(conn)
    with pytest.raises(ReqlServerCompileError, match=r"^Unrecognized global optional argument `bogus`"):
        r.db_list().run(conn, bogus=1)
    # Nothing ran: the insert was rejected before evaluation.
    assert table.get("x").run(conn) is None
    # Known optional arguments (and an object literal's arbitrary fields) still work.
    assert table.insert({"id": "x", "timeout": 1}, conflict="replace", durability="soft").run(conn)["inserted"] == 1
    assert r.db("org_lab__default").table("_audit", read_mode="outdated").get("x").run(conn)["timeout"] == 1


def test_return_changes(conn: DefaultConnection) -> None:
    t = r.db("org_lab__default").table("_schemas")
    doc = {"id": "users", "primary_key": "id"}
    assert t.insert(doc, return_changes=True).run(conn)["changes"] == [{"new_val": doc, "old_val": None}]
    same = t.insert(doc, conflict="replace", return_changes=True).run(conn)
    assert same["unchanged"] == 1 and same["changes"] == []  # true: only rows that changed
    always = t.insert(doc, conflict="replace", return_changes="always").run(conn)
    assert always["changes"] == [{"new_val": doc, "old_val": doc}]
    dup = t.insert(doc, return_changes="always").run(conn)
    assert dup["errors"] == 1 and dup["changes"][0]["error"].startswith("Duplicate primary key `id`")
    assert dup["changes"][0]["old_val"] == dup["changes"][0]["new_val"] == doc
    updated = t.get("users").update({"n": 1}, return_changes=True).run(conn)
    assert updated["changes"] == [{"new_val": {**doc, "n": 1}, "old_val": doc}]
    deleted = t.get("users").delete(return_changes=True).run(conn)
    assert deleted["deleted"] == 1 and deleted["changes"] == [{"new_val": None, "old_val": {**doc, "n": 1}}]
    assert "changes" not in t.insert({"id": "plain"}).run(conn)
    with pytest.raises(ReqlQueryLogicError, match="Invalid return_changes value"):
        t.insert({"id": "y"}, return_changes="sometimes").run(conn)


CONSISTENCY_FAULTS = [
    (), ("rethinkdb.critical_issue",), ("rethinkdb.table_not_ready",), ("rethinkdb.replica_lagging",),
    ("rethinkdb.replica_unreachable",), ("rethinkdb.critical_issue", "rethinkdb.table_not_ready"),
    ("rethinkdb.critical_issue", "rethinkdb.replica_lagging"),
    ("rethinkdb.critical_issue", "rethinkdb.replica_unreachable", "rethinkdb.table_not_ready"),
]


@pytest.mark.parametrize("active", CONSISTENCY_FAULTS, ids=lambda a: "+".join(a) or "healthy")
def test_issues_status_config_and_writes_describe_one_cluster(
        conn: DefaultConnection, faults: FaultSet, active: tuple[str, ...]) -> None:
    for name in active:
        faults.inject(name)
    sys = r.db("rethinkdb")
    snapshot = r.expr({name: sys.table(name).coerce_to("array") for name in (
        "current_issues", "table_status", "table_config", "server_status", "server_config")}).run(conn)
    statuses = {(row["db"], row["name"]): row for row in snapshot["table_status"]}
    configs = {(row["db"], row["name"]): row for row in snapshot["table_config"]}
    issues = {(i["info"]["db"], i["info"]["table"]): i for i in snapshot["current_issues"]}
    connected = {row["name"] for row in snapshot["server_status"]}
    assert connected == {row["name"] for row in snapshot["server_config"]}
    assert all(set(row["network"]["connected_to"]) == connected - {row["name"]} for row in snapshot["server_status"])
    for key, row in statuses.items():
        status, replicas = row["status"], row["shards"][0]["replicas"]
        unreachable = [rep["server"] for rep in replicas if rep["state"] == "disconnected"]
        # table_config and table_status name the same servers; unreachable ones are not connected.
        assert sorted(rep["server"] for rep in replicas) == sorted(configs[key]["shards"][0]["replicas"])
        assert {rep["server"] for rep in replicas} - set(unreachable) <= connected
        assert not set(unreachable) & connected
        # An issue exactly when the table is not fully ready because a server is unreachable,
        # built from the table's own status, critical exactly below write readiness.
        if status["all_replicas_ready"] or not unreachable:
            assert key not in issues
        else:
            issue = issues.pop(key)
            assert issue["info"]["status"] == status and issue["info"]["shards"] == row["shards"]
            assert issue["critical"] is (not status["ready_for_writes"])
            assert issue["description"].startswith(f"Table `{key[0]}.{key[1]}` is available for ")
            assert issue["description"].endswith(f"The following servers are not reachable: {', '.join(unreachable)}")
        # What the status promises is what a write, a read and wait() do.
        table, outdated = r.db(key[0]).table(key[1]), r.db(key[0]).table(key[1], read_mode="outdated")
        _assert_outcome(status["ready_for_writes"], table.insert({"id": "probe"}, conflict="replace"), conn)
        _assert_outcome(status["ready_for_reads"], table.count(), conn)
        _assert_outcome(status["ready_for_outdated_reads"], outdated.count(), conn)
        _assert_outcome(status["ready_for_writes"], table.wait(wait_for="ready_for_writes", timeout=1), conn)
    assert not issues, f"issues about tables that do not exist: {issues}"


def _assert_outcome(expected_ok: bool, query: RqlQuery, conn: DefaultConnection) -> None:
    if expected_ok:
        query.run(conn)
    else:
        with pytest.raises(ReqlOpFailedError):
            query.run(conn)


def test_issue_id_is_derived_from_the_table_id_as_the_server_does(conn: DefaultConnection, faults: FaultSet) -> None:
    faults.inject("rethinkdb.critical_issue")
    (issue,) = list(r.db("rethinkdb").table("current_issues").run(conn))
    table_id = r.db("org_lab__default").table("_audit").config()["id"].run(conn)
    assert issue["id"] == str(uuid.uuid5(uuid.UUID("4ae8c575-b103-3335-a79a-121089e34339"), table_id))
    uuids = list(r.db("rethinkdb").table("current_issues", identifier_format="uuid").run(conn))
    assert uuids[0]["info"]["table"] == table_id and uuids[0]["info"]["db"] != "org_lab__default"


# -- lifecycle --------------------------------------------------------------------------------


def test_no_thread_or_socket_leaks_across_start_stop_cycles() -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    for _ in range(20):
        server = RethinkDBSimulator(password=PASSWORD)
        server.start()
        conn = r.connect(server.host, server.port, password=PASSWORD, timeout=5)
        assert r.db_list().run(conn)
        idle = socket.create_connection((server.host, server.port))  # stuck mid-handshake
        server.stop()
        conn.close(noreply_wait=False)
        idle.close()
        assert server.connection_count == 0
    assert threading.active_count() == threads_before
    assert open_fds() <= fds_before


def test_stop_is_idempotent_and_restart_rejected() -> None:
    server = RethinkDBSimulator()
    server.start()
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()
    server.stop()
    assert not server.running


@DRIVER_SOCKET_LEAK
def test_stop_interrupts_a_waiting_query(faults: FaultSet) -> None:
    server = RethinkDBSimulator(faults=faults)
    server.start()
    conn = r.connect(server.host, server.port, timeout=5)
    faults.inject("rethinkdb.table_not_ready")
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            r.db("org_lab__default").wait().run(conn)
        except Exception as exc:
            errors.append(exc)

    queries_before = server.state.queries_total
    thread = threading.Thread(target=waiter)
    thread.start()
    # The wait() query has reached the server (it then waits until the fault clears or a stop).
    wait_until(lambda: server.state.queries_total > queries_before, what="the wait() query at the server")
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - started < 3
    assert errors and isinstance(errors[0], ReqlDriverError)
    conn.close(noreply_wait=False)
