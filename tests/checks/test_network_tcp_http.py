"""network.tcp.connect and network.https.get against real local listeners and an HTTP server."""

from __future__ import annotations

from typing import Any

from mgn_verify.checks import network

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, run_check
from tests.checks.servers import DnsServer


def tcp(endpoint: str, **settings: Any) -> Outcome:
    config = make_config({"network.timeout": 0.5, **settings})
    return run_check(network._tcp_check([endpoint]), config=config, endpoint=endpoint)


def get(url: str, **settings: Any) -> Outcome:
    config = make_config({"network.timeout": 0.5, **settings})
    return run_check(network._http_check(url), config=config, url=url)


def test_tcp_connects(http_server: str) -> None:
    endpoint = http_server.removeprefix("http://")
    outcome = tcp(endpoint)
    assert outcome.status == "pass" and outcome.message.startswith(f"connected to {endpoint} in")


def test_tcp_refused(closed_port: int) -> None:
    outcome = tcp(f"127.0.0.1:{closed_port}")
    assert outcome.status == "fail"
    assert outcome.message.startswith(f"connection refused by 127.0.0.1:{closed_port}")


def test_tcp_timeout(full_backlog_port: int) -> None:
    outcome = tcp(f"127.0.0.1:{full_backlog_port}", **{"network.timeout": 0.3})
    assert outcome.status == "fail"
    assert outcome.message.startswith(f"no answer from 127.0.0.1:{full_backlog_port} within 0.3 s")


def test_tcp_dns_failure(dnsmasq: DnsServer) -> None:
    outcome = tcp("missing.test:443", **{"network.resolvers": [dnsmasq.resolver]})
    assert outcome.status == "fail"
    assert (
        outcome.message
        == f"DNS failure for missing.test: NXDOMAIN from {dnsmasq.resolver}: the name does not exist"
    )


def test_tcp_name_resolved_through_configured_resolver(dnsmasq: DnsServer, http_server: str) -> None:
    port = http_server.rsplit(":", 1)[1]
    outcome = tcp(f"api.test:{port}", **{"network.resolvers": [dnsmasq.resolver]})
    assert outcome.status == "pass" and "127.0.0.1" in outcome.message


def test_no_endpoints_skips() -> None:
    outcome = run_check(network._tcp_check([]))
    assert outcome == Outcome("skip", "network.tcp_endpoints is empty: nothing configured", {})


def test_http_200(http_server: str) -> None:
    outcome = get(f"{http_server}/ok")
    assert outcome.status == "pass" and outcome.details["status"] == 200


def test_http_500(http_server: str) -> None:
    outcome = get(f"{http_server}/fail")
    assert outcome.status == "fail" and "answered HTTP 500 Internal Server Error" in outcome.message


def test_http_403_warns(http_server: str) -> None:
    assert get(f"{http_server}/denied").status == "warn"


def test_http_slow_names_the_timeout(http_server: str) -> None:
    outcome = get(f"{http_server}/slow", **{"network.timeout": 0.3})
    assert outcome.status == "fail" and outcome.message == f"no complete response from {http_server}/slow within 0.3 s"


def test_http_reset(http_server: str) -> None:
    outcome = get(f"{http_server}/reset")
    assert outcome.status == "fail"
    assert "connection reset" in outcome.message or "closed the connection" in outcome.message


def test_http_refused(closed_port: int) -> None:
    outcome = get(f"http://127.0.0.1:{closed_port}/")
    assert outcome.status == "fail" and outcome.message.startswith("cannot connect to")
