"""network.interface.default, network.cidr.overlap, network.mtu and network.ntp.reach."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import psutil
import pytest
from mgn_verify.checks import network
from mgn_verify.checks._cidr import no_proxy_covers, parse_ranges
from mgn_verify.checks._dns import Resolver, parse_resolver
from mgn_verify.checks._net import Endpoint, parse_endpoint

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, make_tree, run_check


def call(func: Any, **settings: Any) -> Outcome:
    return run_check(func, config=make_config(settings))


def test_interface_default_on_this_machine_and_without_routes(tmp_path: Path) -> None:
    assert call(network.check_interface_default).status in ("pass", "fail")  # the machine decides
    make_tree(
        tmp_path,
        {
            "/proc/net/route": "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n",
            "/proc/net/ipv6_route": "",
        },
    )
    outcome = call(network.check_interface_default, **{"network.root": str(tmp_path)})
    if outcome.status != "fail" or "no interface" not in outcome.message:
        assert outcome.status == "fail" and "no default route" in outcome.message


def test_default_route_parsing(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "/proc/net/route": "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
            "eth9\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n",
            "/proc/net/ipv6_route": "0" * 32 + " 00 " + "0" * 32 + " 00 fd000000000000000000000000000001 "
            "00000400 00000002 00000000 00000003 eth9\n",
        },
    )
    from mgn_verify.checks._host import Host

    routes = Host(tmp_path).default_routes()
    assert [(r.iface, r.gateway, r.family) for r in routes] == [
        ("eth9", "192.0.2.1", 4),
        ("eth9", "fd00:0000:0000:0000:0000:0000:0000:0001", 6),
    ]


def test_cidr_defaults_do_not_overlap() -> None:
    outcome = call(network.check_cidr_overlap)
    assert outcome.status == "pass", outcome.message


def test_cidr_overlaps_name_the_pair() -> None:
    outcome = call(
        network.check_cidr_overlap,
        **{
            "network.pod_cidr": "100.64.0.0/16",
            "network.service_cidr": "10.96.0.0/12",
            "network.metallb_pool": ["10.100.0.10-10.100.0.20"],
        },
    )
    assert outcome.status == "fail"
    assert "pod CIDR 100.64.0.0/16 overlaps Tailscale range 100.64.0.0/10" in outcome.message
    assert "service CIDR 10.96.0.0/12 overlaps MetalLB pool 10.100.0.10-10.100.0.20" in outcome.message
    v6 = call(network.check_cidr_overlap, **{"network.host_cidrs": ["fd7a:115c:a1e0:ab12::/64"]})
    assert "host network (configured) fd7a:115c:a1e0:ab12::/64 overlaps Tailscale range" in v6.message


def test_cidr_overlap_with_a_real_host_network() -> None:
    nets = [
        ipaddress.ip_interface(f"{a.address}/{a.netmask}").network
        for name, addrs in psutil.net_if_addrs().items()
        if name != "lo"
        for a in addrs
        if a.family.name == "AF_INET" and a.netmask
    ]
    if not nets:
        return  # a machine with loopback only: covered by the configured-network case above
    outcome = call(network.check_cidr_overlap, **{"network.metallb_pool": [str(nets[0])]})
    assert outcome.status == "fail" and "overlaps host network" in outcome.message


def test_parse_ranges_and_no_proxy() -> None:
    assert [str(n) for n in parse_ranges("192.168.1.240-192.168.1.247")] == ["192.168.1.240/29"]
    assert no_proxy_covers([".svc.cluster.local"], "kubernetes.default.svc.cluster.local")
    assert no_proxy_covers(["10.0.0.0/8"], "10.96.0.0/12")
    assert not no_proxy_covers(["10.96.0.0/16"], "10.96.0.0/12")
    assert no_proxy_covers(["[::1]:8080", "fd7a:115c:a1e0::/48"], "fd7a:115c:a1e0::/48")


def test_mtu() -> None:
    ok = call(network.check_mtu, **{"network.mtu_interfaces": ["lo"], "network.cni_mtu": 1450})
    assert ok.status == "pass" and ok.message.startswith("CNI MTU 1450 fits lo")
    big = call(network.check_mtu, **{"network.mtu_interfaces": ["lo"], "network.cni_mtu": 70000})
    assert big.status == "fail" and "exceeds lo MTU 65536" in big.message
    absent = call(
        network.check_mtu, **{"network.mtu_interfaces": ["lo", "tailscale9"], "network.cni_mtu": 1200}
    )
    assert absent.status == "warn" and "tailscale9" in absent.message
    assert call(network.check_mtu).status in ("pass", "skip", "fail")  # the machine decides


def test_ntp(sntp_server: Any, silent_udp: int) -> None:
    good = sntp_server(0.25, 1)
    config = make_config({"network.timeout": 0.3})
    func = network._ntp_check([f"127.0.0.1:{good}"])
    outcome = run_check(func, config=config, server=f"127.0.0.1:{good}")
    assert outcome.status == "pass" and outcome.message.startswith("stratum 1 (GPS), offset +0.2")
    kiss = sntp_server(0.0, 0)
    outcome = run_check(func, config=config, server=f"127.0.0.1:{kiss}")
    assert outcome.status == "fail" and "kiss-o'-death (RATE)" in outcome.message
    outcome = run_check(func, config=config, server=f"127.0.0.1:{silent_udp}")
    assert (
        outcome.status == "fail"
        and outcome.message == f"no NTP answer from 127.0.0.1:{silent_udp} within 0.3 s"
    )
    assert run_check(network._ntp_check([])).status == "skip"


# -- host:port parsing shared by endpoints and resolvers --------------------------------------


@pytest.mark.parametrize(
    ("text", "endpoint", "resolver"),
    [
        ("10.0.0.2:5353", Endpoint("10.0.0.2", 5353), Resolver("10.0.0.2", 5353)),
        ("[fd00::2]:5353", Endpoint("fd00::2", 5353), Resolver("fd00::2", 5353)),
        (" 10.0.0.2 ", Endpoint("10.0.0.2", 53), Resolver("10.0.0.2", 53)),
        ("[fd00::2]", Endpoint("fd00::2", 53), Resolver("fd00::2", 53)),
        ("fd00::2", Endpoint("fd00::2", 53), Resolver("fd00::2", 53)),
    ],
)
def test_endpoints_and_resolvers_split_host_and_port_alike(text: str, endpoint: Endpoint, resolver: Resolver) -> None:
    assert parse_endpoint(text, default_port=53) == endpoint
    assert parse_resolver(text) == resolver
    assert str(endpoint) == str(resolver)


def test_endpoint_and_resolver_keep_their_own_rules_for_a_bare_colon() -> None:
    assert parse_endpoint("10.0.0.2:", default_port=53) == Endpoint("10.0.0.2", 53)
    with pytest.raises(ValueError):
        parse_resolver("10.0.0.2:")  # a resolver's port, once a colon is written, must be a number
    with pytest.raises(ValueError):
        parse_resolver("dns.example:53")  # resolvers are addresses
    with pytest.raises(ValueError, match="expected host:port"):
        parse_endpoint("example.org")
