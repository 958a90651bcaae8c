"""A RethinkDB client for one cluster: where the server is, and a connection through the real
``rethinkdb`` driver, with the driver's errors turned into the framework's ``ClientError`` tree.

Where: ``rethinkdb.host``/``port`` when a host is set; else the cluster's Kubernetes Service
(``rethinkdb.service`` in ``rethinkdb.namespace``), found as GuildNet's Host App finds it
(guildnet-host-app.md §4.2): LoadBalancer ingress, else a NodePort on the first node's address,
else the ClusterIP; else, when that is impossible (no kubeconfig, no Service), 127.0.0.1.

The driver is imported when a connection is opened, never at import time. A driver connection
is not thread-safe, so ``RethinkClient.run`` serialises queries on a lock (checks run on threads).
The password is never part of a message: the driver's own texts do not contain it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mgn_verify._exceptions import ApiError, AuthError, ClientError, UnreachableError

if TYPE_CHECKING:
    from mgn_verify.config import Config

__all__ = ["COMPONENT", "RethinkAddress", "RethinkClient", "connect", "discover", "tcp_probe"]

COMPONENT = "rethinkdb"
LOOPBACK = "127.0.0.1"


class _Rethink(Protocol):
    """The fields of ``checks._clusters.RethinkTarget`` this module reads."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def namespace(self) -> str: ...


class _Cluster(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kubeconfig(self) -> str | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def rethinkdb(self) -> _Rethink: ...


@dataclass(frozen=True)
class RethinkAddress:
    """Where to connect, how it was found (``source``), and whether anything named it (``configured``:
    a host setting or a Service found). ``note`` says why discovery fell back to loopback."""

    host: str
    port: int
    source: str
    configured: bool
    note: str = ""

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# -- where ----------------------------------------------------------------------------------------


def discover(cluster: _Cluster, *, config: Config | None = None, timeout: float = 5.0) -> RethinkAddress:
    """The address of the cluster's RethinkDB (see the module docstring for the order)."""
    target = cluster.rethinkdb
    if target.host:
        return RethinkAddress(target.host, target.port, "rethinkdb.host", configured=True)
    where = f"Service {target.namespace}/{target.service}"
    try:
        found = _service_address(cluster, config, timeout)
    except ClientError as exc:
        note = f"no address from {where}: {exc}"
        return RethinkAddress(LOOPBACK, target.port, "the default location", configured=False, note=note)
    if found is None:
        note = f"{where} gives no address (no ingress, node or cluster IP)"
        return RethinkAddress(LOOPBACK, target.port, "the default location", configured=False, note=note)
    host, port, how = found
    return RethinkAddress(host, port, f"{where} ({how})", configured=True)


def _service_address(cluster: _Cluster, config: Config | None, timeout: float) -> tuple[str, int, str] | None:
    from mgn_verify.clients import kube

    target = cluster.rethinkdb
    conn = kube.connect(cluster, config=config, timeout=timeout)
    try:
        core = kube.api(conn, "CoreV1Api")
        try:
            service = kube.plain(conn, kube.request(conn, core.read_namespaced_service, target.service,
                                                   target.namespace))
        except ApiError as exc:
            if exc.status == 404:
                raise ApiError(f"Service {target.namespace}/{target.service} not found", component=COMPONENT,
                               target=cluster.id, status=404) from None
            raise
        spec, status = service.get("spec") or {}, service.get("status") or {}
        ports = spec.get("ports") or []
        client = next((p for p in ports if p.get("name") == "client"), ports[0] if ports else {})
        port = int(client.get("port") or target.port)
        for ingress in (status.get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip") or ingress.get("hostname"):
                return str(ingress.get("ip") or ingress.get("hostname")), port, "LoadBalancer ingress"
        if spec.get("type") == "NodePort" and client.get("nodePort"):
            node = _first_node_address(conn, core)
            if node:
                return node, int(client["nodePort"]), "NodePort"
        cluster_ip = spec.get("clusterIP")
        if cluster_ip and cluster_ip != "None":
            return str(cluster_ip), port, "ClusterIP"
        return None
    finally:
        kube.close(conn)


def _first_node_address(conn: Any, core: Any) -> str | None:
    from mgn_verify.clients import kube

    nodes = kube.plain(conn, kube.request(conn, core.list_node)).get("items") or []
    addresses = ((nodes[0].get("status") or {}).get("addresses") or []) if nodes else []
    for kind in ("ExternalIP", "InternalIP"):
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return str(address["address"])
    return None


def tcp_probe(address: RethinkAddress, timeout: float) -> float:
    """Seconds a TCP connect took; ``UnreachableError`` naming the address otherwise."""
    started = time.perf_counter()
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return time.perf_counter() - started
    except ConnectionRefusedError:
        reason = "connection refused"
    except TimeoutError:
        reason = f"no answer within {timeout:g} s"
    except socket.gaierror as exc:
        reason = f"cannot resolve {address.host}: {exc.strerror}"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise UnreachableError(f"{address}: {reason}", component=COMPONENT, target=str(address))


# -- connection -------------------------------------------------------------------------------------


@dataclass
class RethinkClient:
    """One open driver connection and the lock that serialises its queries."""

    conn: Any = field(repr=False)
    address: RethinkAddress
    user: str
    query_timeout: float = 30.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def r(self) -> Any:
        from rethinkdb import r

        return r

    def run(self, query: Any, **options: Any) -> Any:
        """Run a ReQL query; a cursor is read to the end. Driver errors become ``ClientError``.
        A query without an answer within ``query_timeout`` is aborted (the driver itself waits
        forever), so one stalled query cannot hold the connection for the rest of the run."""
        from rethinkdb.errors import ReqlDriverError, ReqlError

        with self._turn() as aborted:
            try:
                result = query.run(self.conn, **options)
                return list(result) if hasattr(result, "__next__") else result
            except ReqlDriverError as exc:
                text = f"no answer within {self.query_timeout:g} s" if aborted.is_set() else _driver_text(exc)
                raise UnreachableError(f"{self.address}: {text}", component=COMPONENT,
                                       target=str(self.address)) from None
            except ReqlError as exc:
                raise ApiError(_driver_text(exc), component=COMPONENT, target=str(self.address),
                               code=type(exc).__name__) from None

    def server_info(self) -> dict[str, Any]:
        """The SERVER_INFO answer: ``{"id", "name", "proxy"}`` of the server connected to."""
        from rethinkdb.errors import ReqlError

        with self._turn() as aborted:
            try:
                return dict(self.conn.server())
            except ReqlError as exc:
                text = f"no answer within {self.query_timeout:g} s" if aborted.is_set() else _driver_text(exc)
                raise UnreachableError(f"{self.address}: {text}", component=COMPONENT,
                                       target=str(self.address)) from None

    @contextlib.contextmanager
    def _turn(self) -> Iterator[threading.Event]:
        """Hold the connection for one query, with a watchdog that shuts its socket down when
        the answer does not come in time; yields the event that says the watchdog fired."""
        # Waiters are bounded too: a holder that stalls is cut off by its own watchdog first.
        if not self.lock.acquire(timeout=self.query_timeout * 4):
            raise UnreachableError(f"{self.address}: the connection is busy with a query that has no answer",
                                   component=COMPONENT, target=str(self.address))
        aborted = threading.Event()

        def abort() -> None:
            aborted.set()
            self._shutdown()

        watchdog = threading.Timer(self.query_timeout, abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            yield aborted
        finally:
            watchdog.cancel()
            self.lock.release()

    def _shutdown(self) -> None:
        """Shut the driver's socket down: a thread blocked reading it wakes up with an error."""
        wrapper = getattr(getattr(self.conn, "_instance", None), "_socket", None)
        sock = getattr(wrapper, "_socket", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of the system table ``rethinkdb.<name>``."""
        rows = self.run(self.r.db("rethinkdb").table(name))
        return [row for row in rows if isinstance(row, dict)]

    def tables(self, *names: str, db_list: bool = False) -> dict[str, Any]:
        """Several system tables (and ``db_list``) read in ONE query, so they describe the same
        moment and a slow server costs one round trip: ``{name: rows, "db_list": [...]}``."""
        r = self.r
        query: dict[str, Any] = {name: r.db("rethinkdb").table(name).coerce_to("array") for name in names}
        if db_list:
            query["db_list"] = r.db_list()
        return dict(self.run(r.expr(query)))

    def close(self) -> None:
        """Close; a query still stuck on another thread is cut off rather than waited for."""
        held = self.lock.acquire(timeout=0.1)
        if not held:
            self._shutdown()
            held = self.lock.acquire(timeout=self.query_timeout)
        try:
            self.conn.close(noreply_wait=False)
        except Exception:  # closing is best effort: the server may be gone already
            pass
        finally:
            if held:
                self.lock.release()


def connect(address: RethinkAddress, user: str, password: str, timeout: float) -> RethinkClient:
    """Open a connection (V1_0 handshake, SCRAM-SHA-256 as ``user``). Raises ``AuthError``
    ("authentication failed for user admin: wrong password"), ``UnreachableError`` or ``ApiError``."""
    from rethinkdb import RethinkDB
    from rethinkdb.errors import ReqlAuthError, ReqlDriverError, ReqlError, ReqlTimeoutError

    try:
        conn = RethinkDB().connect(host=address.host, port=address.port, user=user, password=password,
                                   timeout=timeout)
    except ReqlAuthError as exc:
        reason = _driver_text(exc).rsplit(", ", 1)[-1].strip().rstrip(".").lower() or "rejected"
        raise AuthError(f"authentication failed for user {user}: {reason}", component=COMPONENT,
                        target=str(address)) from None
    except ReqlTimeoutError:
        raise UnreachableError(f"{address}: no handshake answer within {timeout:g} s", component=COMPONENT,
                               target=str(address)) from None
    except ReqlDriverError as exc:
        raise UnreachableError(f"{address}: {_driver_text(exc)}", component=COMPONENT,
                               target=str(address)) from None
    except ReqlError as exc:
        raise ApiError(_driver_text(exc), component=COMPONENT, target=str(address)) from None
    return RethinkClient(conn, address, user, query_timeout=timeout)


def _driver_text(exc: BaseException) -> str:
    """The driver's message, first line only (it appends the query and a caret line)."""
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
