"""Network checks are never downgraded from HTTPS to HTTP, and never pass slower than their timeout.

Real local servers: an HTTPS server (trustme certificate) that redirects, answers late, trickles
its body or chains slow redirects, and a plain HTTP server that records every request it gets
(a refused downgrade must not reach it). The guard on the checks' helper modules runs the real
``mgn verify list``.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib
import json
import pkgutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme
import yaml
from mgn_verify.checks import _registry_probe, network

from mgn_verify import checks as checks_package
from mgn_verify._marks import get_marks
from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, run_check
from tests.checks.servers import QuietServer

MANIFEST = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}'
TRICKLE = 12  # bytes of a body sent one every TRICKLE_GAP seconds: each read is quick, the whole is not
TRICKLE_GAP = 0.4  # under the 0.5 s timeout; the whole trickle (~4.8 s) is well over SLACK + 0.5 s
#: What a loaded 2-core machine may add to a deadline before "given up at the deadline" is doubted.
SLACK = 2.0
#: Timeout for paths that must pass: generous, a pass must not depend on the machine's load.
PASS_TIMEOUT = 5.0


@dataclass
class Servers:
    https: str  # https://127.0.0.1:port
    http: str  # http://127.0.0.1:port
    ca_bundle: str
    plain_requests: list[str] = field(default_factory=list)  # paths the plain HTTP server was asked for

    @property
    def registry(self) -> str:
        return self.https.removeprefix("https://")


class _Handler(http.server.BaseHTTPRequestHandler):
    servers: ClassVar[Servers]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"ok\n", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 307) -> None:
        self._reply(status, b"", {"Location": location})

    def _trickle(self, content_type: str = "text/plain") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(TRICKLE))
        self.end_headers()
        self.wfile.flush()
        for _ in range(TRICKLE):
            time.sleep(TRICKLE_GAP)
            self.wfile.write(b"x")
            self.wfile.flush()

    def do_GET(self) -> None:
        s, path = self.servers, self.path
        if path == "/ok":
            return self._reply(200)
        if path == "/to-http":
            return self._redirect(f"{s.http}/ok?sig=secret-signature")
        if path == "/to-https":
            return self._redirect(f"{s.https}/ok", 302)
        if path == "/loop":
            return self._redirect("/loop", 302)
        if path == "/late":
            time.sleep(0.8)
            return self._reply(200)
        if path == "/trickle":
            return self._trickle()
        if path.startswith("/hop/"):  # each hop quick enough alone, the chain is not
            left = int(path.rsplit("/", 1)[1])
            time.sleep(0.3)
            return self._redirect(f"/hop/{left - 1}", 302) if left else self._reply(200)
        return self._registry(path)

    def _registry(self, path: str) -> None:
        s = self.servers
        if path == "/v2/down/app/manifests/1.0":
            return self._redirect(f"{s.http}{path}")
        if path == "/v2/realm/app/manifests/1.0":
            challenge = f'Bearer realm="{s.http}/token",service="test-registry"'
            return self._reply(401, b"{}", {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
        if path == "/v2/moved/app/manifests/1.0":
            return self._redirect("/v2/public/app/manifests/1.0")
        if path == "/v2/public/app/manifests/1.0":
            media = "application/vnd.oci.image.manifest.v1+json"
            return self._reply(200, MANIFEST, {"Content-Type": media})
        if path == "/v2/slow/app/manifests/1.0":
            return self._trickle("application/vnd.oci.image.manifest.v1+json")
        return self._reply(404, b'{"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]}')


class _PlainHandler(http.server.BaseHTTPRequestHandler):
    servers: ClassVar[Servers]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.servers.plain_requests.append(self.path)
        body = b'{"token": "plain-token"}' if self.path.startswith("/token") else MANIFEST
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)



@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("trust-network") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handler = type("Handler", (_Handler,), {})
    plain_handler = type("PlainHandler", (_PlainHandler,), {})
    secure, plain = QuietServer(("127.0.0.1", 0), handler), QuietServer(("127.0.0.1", 0), plain_handler)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    state = Servers(f"https://127.0.0.1:{secure.server_address[1]}", f"http://127.0.0.1:{plain.server_address[1]}",
                    str(bundle))
    handler.servers = plain_handler.servers = state
    for server in (secure, plain):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    for server in (secure, plain):
        server.shutdown()
        server.server_close()


def get(servers: Servers, path: str, timeout: float = PASS_TIMEOUT) -> tuple[Outcome, float]:
    url = f"{servers.https}{path}"
    config = make_config({"network.timeout": timeout, "network.ca_bundle": servers.ca_bundle})
    started = time.monotonic()
    outcome = run_check(network._http_check(url), config=config, url=url)
    return outcome, time.monotonic() - started


def pull(servers: Servers, repository: str, timeout: float = PASS_TIMEOUT) -> tuple[Outcome, float]:
    image = f"{servers.registry}/{repository}:1.0"
    config = make_config({"network.timeout": timeout, "network.ca_bundle": servers.ca_bundle})
    started = time.monotonic()
    outcome = run_check(_registry_probe.registry_check([image]), config=config, image=image)
    return outcome, time.monotonic() - started


# -- no downgrade ---------------------------------------------------------------------------


def test_https_get_refuses_a_redirect_to_http(servers: Servers) -> None:
    servers.plain_requests.clear()
    outcome, _ = get(servers, "/to-http")
    assert outcome.status == "fail", outcome
    # The target is named without its query string (signed URLs carry credentials there).
    assert outcome.message == (
        f"refusing TLS downgrade: {servers.https}/to-http redirected to {servers.http}/ok"
    )
    assert servers.plain_requests == []


def test_https_get_follows_redirects_that_stay_on_https(servers: Servers) -> None:
    outcome, _ = get(servers, "/to-https")
    assert outcome.status == "pass", outcome
    assert outcome.details["status"] == 200
    assert outcome.details["redirects"] == [f"{servers.https}/ok"]
    assert outcome.message.startswith("HTTP 200 OK in ")
    assert outcome.message.endswith(f" ms (after 1 redirect to {servers.https}/ok)")


def test_https_get_bounds_the_redirects(servers: Servers) -> None:
    outcome, _ = get(servers, "/loop")
    assert outcome.status == "fail"
    assert outcome.message == f"{servers.https}/loop: more than 5 redirects"


def test_registry_refuses_a_manifest_redirect_to_http(servers: Servers) -> None:
    servers.plain_requests.clear()
    outcome, _ = pull(servers, "down/app")
    assert outcome.status == "fail", outcome
    path = "/v2/down/app/manifests/1.0"
    assert outcome.message == f"refusing TLS downgrade: {servers.https}{path} redirected to {servers.http}{path}"
    assert servers.plain_requests == []


def test_registry_refuses_a_plain_http_token_realm_even_anonymous(servers: Servers) -> None:
    servers.plain_requests.clear()
    outcome, _ = pull(servers, "realm/app")
    assert outcome.status == "fail", outcome
    assert outcome.message == (
        f"refusing TLS downgrade: registry {servers.registry} sends token requests to {servers.http}/token"
    )
    assert servers.plain_requests == []


def test_registry_follows_a_redirect_that_stays_on_https(servers: Servers) -> None:
    outcome, _ = pull(servers, "moved/app")
    assert outcome.status == "pass", outcome
    assert outcome.details["media_type"] == "application/vnd.oci.image.manifest.v1+json"


# -- one deadline for the whole request -----------------------------------------------------


def test_a_late_answer_is_a_failure(servers: Servers) -> None:
    outcome, elapsed = get(servers, "/late", timeout=0.5)
    assert outcome.status == "fail", outcome
    assert outcome.message == f"no complete response from {servers.https}/late within 0.5 s"
    assert elapsed < 0.5 + SLACK


def test_a_trickled_body_slower_than_the_timeout_is_a_failure(servers: Servers) -> None:
    # Each byte comes within 0.5 s, the whole body after ~4.8 s: a per-read timeout passes it.
    outcome, elapsed = get(servers, "/trickle", timeout=0.5)
    assert outcome.status == "fail", outcome
    assert outcome.message.startswith(f"no complete response from {servers.https}/trickle within 0.5 s")
    assert "HTTP 200 headers received, body incomplete" in outcome.message
    assert elapsed < 0.5 + SLACK  # given up at the deadline, not after the whole trickle


def test_the_deadline_covers_the_redirects(servers: Servers) -> None:
    outcome, elapsed = get(servers, "/hop/3", timeout=0.8)  # 4 hops of 0.3 s: each in time, not all
    assert outcome.status == "fail", outcome
    assert outcome.message == f"no complete response from {servers.https}/hop/3 within 0.8 s"
    assert elapsed < 0.8 + SLACK


def test_a_complete_quick_answer_still_passes(servers: Servers) -> None:
    outcome, _ = get(servers, "/ok")
    assert outcome.status == "pass" and outcome.details["status"] == 200


def test_registry_trickled_manifest_is_a_failure(servers: Servers) -> None:
    outcome, elapsed = pull(servers, "slow/app", timeout=0.5)
    assert outcome.status == "fail", outcome
    assert outcome.message.startswith(f"registry {servers.registry} sent no complete response within 0.5 s")
    assert elapsed < 0.5 + SLACK


def test_cli_network_run_fails_a_slow_endpoint(servers: Servers, tmp_path: Path, mgn: Any) -> None:
    url = f"{servers.https}/trickle"
    config = {"network": {"https_endpoints": [url], "ca_bundle": servers.ca_bundle}}
    path = tmp_path / "mgn.yaml"
    path.write_text(yaml.safe_dump(config))
    run = mgn("verify", "network", "--config", str(path), "--set", "network.timeout=0.5",
              "--check", "network.https.get*")
    assert run.statuses[f"network.https.get[{url}]"] == "fail", run.stdout
    assert run.result(f"network.https.get[{url}]")["message"].startswith(
        f"no complete response from {url} within 0.5 s")
    assert run.exit_code == 1


@pytest.fixture
def silent_tls_port() -> Iterator[int]:
    """A listener that accepts and never says a word: the TLS handshake never completes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()
    for conn in held:
        conn.close()


def test_tls_check_connect_and_handshake_share_one_deadline(silent_tls_port: int) -> None:
    url = f"https://127.0.0.1:{silent_tls_port}/"
    config = make_config({"network.timeout": 0.5})
    started = time.monotonic()
    outcome = run_check(network._tls_check(url), config=config, url=url)
    assert outcome.status == "fail", outcome
    assert outcome.message == f"127.0.0.1:{silent_tls_port}: no complete TLS handshake within 0.5 s"
    assert time.monotonic() - started < 0.5 + SLACK


def test_cri_probe_has_one_deadline_for_the_whole_frame(tmp_path: Path) -> None:
    from mgn_verify.checks._net import http2_probe

    path = str(tmp_path / "cri.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def trickle_settings_frame() -> None:  # 9 bytes, one every TRICKLE_GAP: each recv is quick
        conn = server.accept()[0]
        with conn, contextlib.suppress(OSError):
            for byte in b"\x00\x00\x00\x04\x00\x00\x00\x00\x00":
                time.sleep(TRICKLE_GAP)
                conn.sendall(bytes([byte]))

    threading.Thread(target=trickle_settings_frame, daemon=True).start()
    started = time.monotonic()
    with server, pytest.raises(TimeoutError, match=r"no complete HTTP/2 SETTINGS frame within 0\.5 s"):
        http2_probe(path, 0.5)
    assert time.monotonic() - started < 0.5 + SLACK  # the whole frame would take ~3.6 s


# -- the helper modules' checks are all registered ------------------------------------------


def _top_level_checks() -> dict[str, str]:
    """source (file:line) → module.function of every @check defined at a checks module's top level."""
    found = {}
    for info in pkgutil.iter_modules(checks_package.__path__):
        module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
        for name, obj in vars(module).items():
            code = getattr(obj, "__code__", None)
            if code is not None and getattr(obj, "__module__", None) == module.__name__ and get_marks(obj, "check"):
                found[f"{code.co_filename}:{code.co_firstlineno}"] = f"{info.name}.{name}"
    return found


def test_every_check_function_of_the_checks_package_is_registered(mgn: Any) -> None:
    run = mgn("verify", "list", "--json")
    assert run.exit_code == 0, run.stderr
    registered = {entry["source"] for entry in json.loads(run.stdout)}
    missing = {name for source, name in _top_level_checks().items() if source not in registered}
    assert not missing, f"@check functions no layer registers: {sorted(missing)}"
