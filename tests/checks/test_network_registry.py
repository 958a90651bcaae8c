"""network.registry.pull against a real HTTPS registry on 127.0.0.1 (trustme certificates) that
implements the OCI distribution manifest endpoint and the Bearer token flow."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
import yaml
from mgn_verify.checks import _registry_probe, network
from mgn_verify.checks._registry_probe import parse_image

from mgn_verify.testing import make_config, run_verify
from tests.checks._layer_helpers import Outcome, run_check
from tests.checks.servers import QuietServer, TlsLab

USER, PASSWORD = "alice", "s3cret-pass-word"
TOKENS = {"tok-alice": USER, "tok-anon": ""}
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [],
    }
).encode()
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": "sha256:" + "1" * 64, "size": 1, "platform": {"os": "linux", "architecture": a}}
            for a in ("amd64", "arm64")
        ],
    }
).encode()


@dataclass
class Registry:
    host: str  # 127.0.0.1:port
    ca_bundle: str
    dead_realm: str = ""  # a token service nobody listens on
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # method, path, headers


class _Handler(http.server.BaseHTTPRequestHandler):
    registry: Registry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        self._reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.registry.requests.append(("GET", self.path, dict(self.headers.items())))
        if parts.path == "/token":
            return self._token(parse_qs(parts.query))
        segments = parts.path.split("/")
        if len(segments) < 5 or segments[1] != "v2" or segments[-2] != "manifests":
            return self._error(404, "NOT_FOUND", "no route")
        repo, ref = "/".join(segments[2:-2]), segments[-1]
        if repo == "nope/app":
            return self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if repo == "elsewhere/app":
            challenge = f'Bearer realm="{self.registry.dead_realm}",service="test-registry"'
            return self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
        if repo.startswith(("private/", "denied/")):
            auth = self.headers.get("Authorization", "")
            user = TOKENS.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            if user is None or (repo.startswith("denied/") and user != "root"):
                challenge = (
                    f'Bearer realm="https://{self.registry.host}/token",service="test-registry",'
                    f'scope="repository:{repo}:pull"'
                )
                return self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
        if ref in ("1.0", "index"):
            body, media = (
                (INDEX, "application/vnd.oci.image.index.v1+json")
                if ref == "index"
                else (
                    MANIFEST,
                    "application/vnd.oci.image.manifest.v1+json",
                )
            )
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            return self._reply(200, body, {"Content-Type": media, "Docker-Content-Digest": digest})
        return self._error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")

    def _token(self, query: dict[str, list[str]]) -> None:
        scope = query.get("scope", [""])[0]
        assert query.get("service") == ["test-registry"], query
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                return self._error(401, "UNAUTHORIZED", "bad credentials")
            token = "tok-alice"
        elif scope.startswith("repository:private/"):
            return self._error(401, "UNAUTHORIZED", "authentication required")
        else:
            token = "tok-anon"
        self._reply(200, json.dumps({"token": token, "expires_in": 300}).encode(), {"Content-Type": "application/json"})



@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, closed_port: int) -> Iterator[Registry]:
    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("registry") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handler = type("Handler", (_Handler,), {})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state = Registry(f"127.0.0.1:{server.server_address[1]}", str(bundle))
    state.dead_realm = f"https://127.0.0.1:{closed_port}/token"
    handler.registry = state
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def pull(image: str, **settings: Any) -> Outcome:
    config = make_config({"network.timeout": 2.0, **settings})
    return run_check(_registry_probe.registry_check([image]), config=config, image=image)


def auth(registry: Registry, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "network.ca_bundle": registry.ca_bundle,
        "network.registry_auth": {registry.host: {"username": USER, "password": password}},
    }


def test_public_manifest(registry: Registry) -> None:
    registry.requests.clear()
    outcome = pull(f"{registry.host}/public/app:1.0", **{"network.ca_bundle": registry.ca_bundle})
    assert outcome.status == "pass", outcome.message
    digest = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert outcome.message == (
        f"{registry.host}/public/app:1.0: application/vnd.oci.image.manifest.v1+json {digest} via anonymous"
    )
    assert outcome.details["digest"] == digest and outcome.details["repository"] == "public/app"
    ((_, path, headers),) = registry.requests
    assert path == "/v2/public/app/manifests/1.0"
    accept = headers["Accept"]
    assert "application/vnd.oci.image.manifest.v1+json" in accept
    assert "application/vnd.docker.distribution.manifest.v2+json" in accept


def test_index_lists_platforms(registry: Registry) -> None:
    outcome = pull(f"{registry.host}/public/app:index", **{"network.ca_bundle": registry.ca_bundle})
    assert outcome.status == "pass" and outcome.details["platforms"] == ["linux/amd64", "linux/arm64"]


def test_token_flow_with_credentials(registry: Registry) -> None:
    registry.requests.clear()
    outcome = pull(f"{registry.host}/private/app:1.0", **auth(registry))
    assert outcome.status == "pass", outcome.message
    assert outcome.details["access"] == "bearer token (as 'alice')"
    paths = [p for _, p, _ in registry.requests]
    assert paths[0] == "/v2/private/app/manifests/1.0" and paths[2] == "/v2/private/app/manifests/1.0"
    token_query = parse_qs(urlsplit(paths[1]).query)
    assert token_query == {"service": ["test-registry"], "scope": ["repository:private/app:pull"]}
    assert registry.requests[2][2]["Authorization"] == "Bearer tok-alice"
    assert PASSWORD not in outcome.message + repr(outcome.details)


def test_manifest_unknown(registry: Registry) -> None:
    outcome = pull(f"{registry.host}/private/app:9.9", **auth(registry))
    assert outcome.status == "fail"
    assert outcome.message == (
        f"manifest unknown: {registry.host}/private/app:9.9 (registry {registry.host}): "
        "MANIFEST_UNKNOWN: manifest unknown: 9.9"
    )
    repo = pull(f"{registry.host}/nope/app:1.0", **{"network.ca_bundle": registry.ca_bundle})
    assert repo.status == "fail" and repo.message.startswith("repository unknown: ")


def test_auth_denied_without_and_with_wrong_credentials(registry: Registry) -> None:
    anonymous = pull(f"{registry.host}/private/app:1.0", **{"network.ca_bundle": registry.ca_bundle})
    assert anonymous.status == "fail"
    assert anonymous.message == (
        f"auth denied: token service {registry.host} refused anonymous for repository:private/app:pull "
        "(HTTP 401; set network.registry_auth)"
    )
    wrong = pull(f"{registry.host}/private/app:1.0", **auth(registry, "wrong-password"))
    assert wrong.status == "fail" and "refused user 'alice'" in wrong.message
    assert "wrong-password" not in wrong.message


def test_auth_denied_by_the_registry_after_a_token(registry: Registry) -> None:
    outcome = pull(f"{registry.host}/denied/app:1.0", **{"network.ca_bundle": registry.ca_bundle})
    assert outcome.status == "fail"
    assert outcome.message.startswith(
        f"auth denied for {registry.host}/denied/app:1.0 (registry {registry.host}) with bearer token "
        "(anonymous): UNAUTHORIZED: authentication required"
    )


def test_tls_failure(registry: Registry) -> None:
    outcome = pull(f"{registry.host}/public/app:1.0")  # system trust store: the test CA is unknown
    assert outcome.status == "fail"
    assert outcome.message.startswith(
        f"TLS failure talking to registry {registry.host}: certificate signed by an unknown CA"
    )


def test_tls_failure_expired_certificate(tls_lab: TlsLab) -> None:
    host = tls_lab.urls["expired"].split("/")[2]
    outcome = pull(f"{host}/public/app:1.0", **{"network.ca_bundle": tls_lab.ca_bundle})
    assert outcome.status == "fail"
    assert outcome.message.startswith(f"TLS failure talking to registry {host}: certificate expired on ")


def test_unreachable(closed_port: int) -> None:
    outcome = pull(f"127.0.0.1:{closed_port}/public/app:1.0")
    assert outcome.status == "fail"
    assert outcome.message == f"registry 127.0.0.1:{closed_port} unreachable: connection refused"


def test_token_service_unreachable(registry: Registry, closed_port: int) -> None:
    outcome = pull(f"{registry.host}/elsewhere/app:1.0", **{"network.ca_bundle": registry.ca_bundle})
    assert outcome.status == "fail"
    assert outcome.message == f"token service 127.0.0.1:{closed_port} unreachable: connection refused"


def test_dns_failure_is_named_without_leaving_the_host() -> None:
    import httpx

    cause = socket.gaierror(-2, "Name or service not known")
    exc = httpx.ConnectError("[Errno -2] Name or service not known")
    exc.__cause__ = cause
    failure = _registry_probe._transport_failure(exc, "https://reg.invalid/v2/", 1.0, "registry")
    assert (failure.kind, str(failure)) == (
        "unreachable",
        "registry reg.invalid unreachable: cannot resolve reg.invalid",
    )


def test_no_images_skips() -> None:
    outcome = run_check(_registry_probe.registry_check([]))
    assert outcome == Outcome("skip", "network.images is empty: nothing configured", {})


@pytest.mark.parametrize(
    ("text", "host", "repository", "reference"),
    [
        ("nginx", "registry-1.docker.io", "library/nginx", "latest"),
        ("docker.io/bitnami/redis:7", "registry-1.docker.io", "bitnami/redis", "7"),
        ("ghcr.io/org/team/app:v1.2", "ghcr.io", "org/team/app", "v1.2"),
        ("localhost:5000/app", "localhost:5000", "app", "latest"),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io", "x/y", "sha256:" + "a" * 64),
    ],
)
def test_parse_image(text: str, host: str, repository: str, reference: str) -> None:
    ref = parse_image(text)
    assert (ref.host, ref.repository, ref.reference) == (host, repository, reference)
    with pytest.raises(ValueError):
        parse_image("Bad/Name:1")


def test_plugin_import_does_not_import_httpx() -> None:
    code = "import sys, mgn_verify.checks.network as n; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and network.mgn_configure is not None


def test_end_to_end_one_result_per_image_and_no_secret(tmp_path: Path, registry: Registry) -> None:
    images = [f"{registry.host}/private/app:1.0", f"{registry.host}/private/app:9.9"]
    config = {
        "network": {
            "images": images,
            "ca_bundle": registry.ca_bundle,
            "registry_auth": {registry.host: {"username": USER, "password": PASSWORD}},
        }
    }
    path = tmp_path / "mgn.yaml"
    path.write_text(yaml.safe_dump(config))
    run = run_verify(["network", "--check", "network.registry.*", "--config", str(path), "-o", "json"])
    s = run.statuses()
    assert s == {f"network.registry.pull[{images[0]}]": "pass", f"network.registry.pull[{images[1]}]": "fail"}, s
    assert run.exit_code == 1
    assert PASSWORD not in run.stdout + run.stderr


def test_passwords_are_secrets_of_the_run(registry: Registry) -> None:
    config = make_config(auth(registry))
    network.mgn_configure(config)
    assert config.redactor.text(f"login {USER}:{PASSWORD}") == f"login {USER}:***"
    shown = dict((key, value) for key, value, _ in config.redacted_items())
    assert shown["network.registry_auth"] == "***"
