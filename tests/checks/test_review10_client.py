"""Review of the Host App client's mutating side (issue 10): a bad ``api.base_url`` is a typed,
one-line error (never an httpx traceback, never retried), a password in it never reaches a
message or a repr, and an error body is redacted before it is cut (half a secret would escape
redaction)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from mgn_verify._exceptions import ClientError, NotFoundError, ServerError
from mgn_verify.clients._hostapp_errors import http_error
from mgn_verify.clients._http import Transport, Unreachable, retry_after_seconds
from mgn_verify.clients.hostapp import HostAppClient
from mgn_verify.config.redact import Redactor
from mgn_verify.lab import Lab

PASSWORD = "pw-do-not-print-77c1"
SECRET = "tok-do-not-print-5e0a93"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"admin:{PASSWORD}@{parts.netloc}"))


@pytest.mark.parametrize("url", ["https://[::1", "https://127.0.0.1:port", "https://exa mple.com:x"])
def test_a_malformed_base_url_is_a_typed_one_line_error(url: str) -> None:
    with pytest.raises(ClientError) as caught:
        HostAppClient(url, retries=2).healthz()
    text = str(caught.value)
    assert "invalid URL" in text and "\n" not in text and caught.value.component == "hostapp"


@pytest.mark.parametrize("url", ["127.0.0.1:8090", "ftp://127.0.0.1"])
def test_a_base_url_without_a_usable_scheme_is_not_retried(url: str) -> None:
    waits: list[float] = []
    transport = Transport(url, "hostapp", retries=3, sleep=waits.append)
    with pytest.raises(Unreachable) as caught:
        transport.request("GET", "/healthz")
    assert caught.value.reason == "url" and waits == []
    assert "http:// or https://" in str(caught.value)


def test_a_password_in_the_base_url_is_never_shown(lab: Lab) -> None:
    down = HostAppClient(f"https://admin:{PASSWORD}@127.0.0.1:{free_port()}", retries=0)
    with pytest.raises(Unreachable) as refused:
        down.healthz()
    assert PASSWORD not in str(refused.value) and PASSWORD not in refused.value.target
    assert PASSWORD not in repr(down) and PASSWORD not in repr(down._transport)
    with HostAppClient(with_userinfo(lab.hostapp.url), ca_bundle=str(lab.ca.ca_path), retries=0) as api:
        with pytest.raises(NotFoundError) as missing:
            api.workspace_logs("lab", "no-such-ws")
        assert PASSWORD not in str(missing.value) and PASSWORD not in missing.value.target
        remote = HostAppClient(f"https://admin:{PASSWORD}@100.64.0.1:8090")
        note = remote.loopback_note()
        assert note is not None and "100.64.0.1" in note and PASSWORD not in note


def test_an_error_body_is_redacted_before_it_is_cut() -> None:
    redactor = Redactor()
    redactor.add(SECRET)
    prefix = "POST /api/x: HTTP 500 boom: "
    # The secret straddles the 600-character cut of the message.
    message = "a" * (600 - len(prefix) - len(SECRET) // 2) + SECRET + " and more"
    response = httpx.Response(500, json={"code": "boom", "message": message})
    error = http_error("POST", "/api/x", response, base_url="https://127.0.0.1:8090", redact=redactor.text)
    assert isinstance(error, ServerError)
    assert SECRET[: len(SECRET) // 2] not in str(error)


def test_a_non_finite_retry_after_is_ignored() -> None:
    assert retry_after_seconds("inf") is None and retry_after_seconds("nan") is None
    assert retry_after_seconds("1e400") is None and retry_after_seconds("2.5") == 2.5


def test_a_proxy_from_the_environment_never_carries_a_loopback_call(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY set for the company network would send 127.0.0.1 through the proxy, and the
    Host App refuses mutations that do not come from loopback."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with HostAppClient(lab.hostapp.url, ca_bundle=str(lab.ca.ca_path), retries=0) as api:
        assert api.healthz() == "ok"
