"""Real local services for the system and network layer tests (loopback only).

dnsmasq serves a test zone, TLS servers present trustme certificates, an HTTP server answers
200/500/slow/reset, a listener with a full backlog makes connects time out, a UDP socket
that never answers stands in for a dead resolver or NTP server, and a tiny SNTP server
answers with a chosen offset. Everything binds 127.0.0.1 on free ports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import dns.exception
import dns.message
import dns.query
import pytest
import trustme
from mgn_verify.checks._sntp import to_ntp

from tests.checks._layer_helpers import free_port
from tests.checks.servers import DnsServer, TlsLab, free_udp_and_tcp_port, serve
from tests.helpers import wait_until

DNSMASQ = "/usr/sbin/dnsmasq"


# -- DNS ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """dnsmasq authoritative for *.test: A, AAAA, CNAME; other *.test names are NXDOMAIN."""
    binary = shutil.which("dnsmasq") or (DNSMASQ if os.path.exists(DNSMASQ) else None)
    if binary is None:
        pytest.fail(
            "dnsmasq is required for the DNS tests (CI installs it: `apt-get install dnsmasq`); "
            f"not found on PATH or at {DNSMASQ}"
        )
    port = free_udp_and_tcp_port()
    log = tmp_path_factory.mktemp("dnsmasq") / "dnsmasq.log"
    argv = [
        binary,
        "--no-daemon",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "-C",
        "/dev/null",
        "--local=/test/",
        "--user=root",
        "--address=/api.test/127.0.0.1",
        "--host-record=dual.test,127.0.0.2,::1",
        "--host-record=v6only.test,::1",
        "--cname=alias.test,dual.test",
        "--host-record=ntp.test,127.0.0.1",
        f"--pid-file={log.with_suffix('.pid')}",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 5
    query = dns.message.make_query("api.test", "A")
    while True:
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
            break
        except (dns.exception.Timeout, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dnsmasq did not start: {log.read_text()}")
    yield DnsServer(port)
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def silent_udp() -> Iterator[int]:
    """A UDP port that receives and never answers (a dead resolver or NTP server)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield int(sock.getsockname()[1])
    sock.close()


# -- TCP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def closed_port() -> int:
    return free_port()


def _connected(client: socket.socket) -> bool:
    """True once the non-blocking connect has completed its handshake (the backlog holds it)."""
    try:
        client.getpeername()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def full_backlog_port() -> Iterator[int]:
    """A listener that never accepts, its backlog filled: further SYNs are dropped (timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        fillers.append(client)
    wait_until(lambda: any(_connected(client) for client in fillers), what="a backlog filler connected")
    yield port
    for client in fillers:
        client.close()
    server.close()


# -- HTTP and TLS ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def http_server() -> Iterator[str]:
    """A plain HTTP server: /ok 200, /fail 500, /denied 403, /slow 1.5 s, /reset RST."""
    server, port = serve(None)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsLab]:
    """HTTPS servers on 127.0.0.1, one per certificate case."""
    ca, rogue = trustme.CA(), trustme.CA()
    now = dt.datetime.now(dt.UTC)
    leaves = {
        "valid": ca.issue_cert("127.0.0.1", "localhost"),
        "expired": ca.issue_cert(
            "127.0.0.1", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
        ),
        "future": ca.issue_cert(
            "127.0.0.1", not_before=now + dt.timedelta(days=2), not_after=now + dt.timedelta(days=90)
        ),
        "wrongname": ca.issue_cert("example.test"),
        "unknownca": rogue.issue_cert("127.0.0.1"),
        "expiring": ca.issue_cert(
            "127.0.0.1", not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=5)
        ),
    }
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    servers, urls = [], {}
    for case, leaf in leaves.items():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        server, port = serve(context)
        servers.append(server)
        urls[case] = f"https://127.0.0.1:{port}/ok"
    yield TlsLab(str(bundle), urls)
    for server in servers:
        server.shutdown()
        server.server_close()


# -- NTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sntp_server() -> Iterator[Callable[[float, int], int]]:
    """``start(offset_s, stratum)`` → port of an SNTP server whose clock is off by offset_s."""
    sockets: list[socket.socket] = []

    def start(offset: float, stratum: int = 2) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)

        def loop() -> None:
            while True:
                try:
                    data, peer = sock.recvfrom(512)
                except OSError:
                    return
                words = struct.unpack("!BBbb11I", data[:48])
                now = to_ntp(time.time() + offset)
                ref = b"GPS\x00" if stratum == 1 else (b"RATE" if stratum == 0 else b"\x7f\x00\x00\x01")
                reply = struct.pack(
                    "!BBbb11I",
                    0x24,
                    stratum,
                    4,
                    -20,
                    0,
                    0,
                    struct.unpack("!I", ref)[0],
                    *now,
                    words[13],
                    words[14],
                    *now,
                    *now,
                )
                sock.sendto(reply, peer)

        threading.Thread(target=loop, daemon=True).start()
        return int(sock.getsockname()[1])

    yield start
    for sock in sockets:
        sock.close()
