"""network.dns.* against a real dnsmasq on 127.0.0.1 and a resolver that never answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgn_verify.checks import network

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, make_tree, run_check
from tests.checks.servers import DnsServer


def resolve(name: str, resolvers: list[str], **settings: Any) -> Outcome:
    config = make_config({"network.resolvers": resolvers, "network.timeout": 0.5, **settings})
    return run_check(network._dns_check([name]), config=config, name=name)


def test_a_record(dnsmasq: DnsServer) -> None:
    outcome = resolve("api.test", [dnsmasq.resolver])
    assert outcome.status == "pass"
    assert outcome.message == f"api.test → 127.0.0.1 (answered by {dnsmasq.resolver})"
    assert outcome.details["resolver"] == dnsmasq.resolver


def test_a_and_aaaa(dnsmasq: DnsServer) -> None:
    outcome = resolve("dual.test", [dnsmasq.resolver])
    assert outcome.status == "pass" and outcome.details["addresses"] == ["127.0.0.2", "::1"]
    v6 = resolve("v6only.test", [dnsmasq.resolver])
    assert v6.status == "pass" and v6.details["addresses"] == ["::1"]


def test_cname_is_followed_and_reported(dnsmasq: DnsServer) -> None:
    outcome = resolve("alias.test", [dnsmasq.resolver])
    assert outcome.status == "pass"
    assert "via CNAME dual.test" in outcome.message and "127.0.0.2" in outcome.message


def test_nxdomain(dnsmasq: DnsServer) -> None:
    outcome = resolve("missing.test", [dnsmasq.resolver])
    assert outcome.status == "fail"
    assert outcome.message == f"missing.test: NXDOMAIN from {dnsmasq.resolver}: the name does not exist"


def test_timeout_names_the_resolver_and_limit(silent_udp: int) -> None:
    outcome = resolve("api.test", [f"127.0.0.1:{silent_udp}"], **{"network.timeout": 0.3})
    assert outcome.status == "fail"
    assert outcome.message == f"api.test: no answer from 127.0.0.1:{silent_udp} within 0.3 s"


def test_falls_over_to_the_next_resolver_and_says_which_answered(dnsmasq: DnsServer, silent_udp: int) -> None:
    outcome = resolve("api.test", [f"127.0.0.1:{silent_udp}", dnsmasq.resolver], **{"network.timeout": 0.3})
    assert outcome.status == "pass" and f"answered by {dnsmasq.resolver}" in outcome.message
    assert outcome.details["tried"] == [f"127.0.0.1:{silent_udp}: no answer within 0.3 s"]


def test_system_path_uses_hosts_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {"/etc/hosts": "127.0.0.1 localhost\n10.9.8.7 db.internal db\n"})
    outcome = resolve("db", [], **{"network.root": str(tmp_path)})
    assert outcome.status == "pass" and outcome.message == "db → 10.9.8.7 (answered by /etc/hosts)"


def test_defaults_resolve_locally() -> None:
    config = make_config({})
    for name in config["network.dns_names"]:
        outcome = run_check(network._dns_check([name]), config=config, name=name)
        assert outcome.status == "pass", outcome.message


def test_empty_list_skips() -> None:
    assert run_check(network._dns_check([])).status == "skip"


def _resolver_check(tmp_path: Path, lines: str, **settings: Any) -> Outcome:
    make_tree(tmp_path, {"/etc/resolv.conf": lines})
    config = make_config({"network.root": str(tmp_path), "network.timeout": 0.3, **settings})
    return run_check(network.check_dns_resolver, config=config)


def test_resolv_conf_resolver_answers(tmp_path: Path, dnsmasq: DnsServer) -> None:
    outcome = _resolver_check(
        tmp_path, "search test\nnameserver 127.0.0.1\n", **{"network.resolv_conf_port": dnsmasq.port}
    )
    assert outcome.status == "pass" and outcome.message == "127.0.0.1 answered REFUSED"  # alive: any rcode
    named = _resolver_check(
        tmp_path,
        "nameserver 127.0.0.1\n",
        **{"network.resolv_conf_port": dnsmasq.port, "network.resolver_probe_name": "api.test"},
    )
    assert named.message == "127.0.0.1 answered NOERROR"


def test_resolv_conf_resolver_silent(tmp_path: Path, silent_udp: int) -> None:
    outcome = _resolver_check(tmp_path, "nameserver 127.0.0.1\n", **{"network.resolv_conf_port": silent_udp})
    assert outcome.status == "fail" and "no resolver in resolv.conf answered" in outcome.message


def test_resolv_conf_remote_resolvers_are_not_queried_by_default(tmp_path: Path) -> None:
    outcome = _resolver_check(tmp_path, "nameserver 192.0.2.53\n")
    assert outcome.status == "skip" and "192.0.2.53" in outcome.message
    assert _resolver_check(tmp_path / "none", "# empty\n").status == "warn"
    missing = run_check(network.check_dns_resolver, config=make_config({"network.root": str(tmp_path / "x")}))
    assert missing.status == "fail" and "does not exist" in missing.message
