"""The ``network`` layer: can this host reach what GuildNet needs, and do its ranges fit?

Per-endpoint checks (DNS names, TCP endpoints, HTTPS URLs, NTP servers) come from config, so
they are built in ``mgn_register_checks``: one result per endpoint, with ids such as
``network.tcp.connect[127.0.0.1:6443]``. An empty list registers one check that skips with
"nothing configured". Dependencies follow the protocol stack: an https URL's TLS check
requires the TCP check of its host:port (added automatically), and the HTTP request
requires the TLS check. Defaults never leave the host: endpoint lists are empty and the
default DNS names are resolvable locally.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any

from mgn_verify import Config, Registry, check, hookimpl, parametrize, skip, warn
from mgn_verify.config import SettingsRegistry

from . import _registry_probe
from ._cidr import TAILNET_V4, TAILNET_V6, Named, find_overlaps, parse_ranges
from ._common import linux_only, nothing_configured
from ._dns import Answer, parse_resolver, probe_server, resolve
from ._host import Host
from ._http import GuardedClient, HttpFailure, shown_url
from ._net import TcpFailure, host_port, parse_endpoint, tcp_connect, url_endpoint
from ._sntp import SntpError, query
from ._tls import TlsFailure, verify_server


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("network.root", "/", help="root below which /proc/net and /etc (hosts, resolv.conf) are read (tests)")
    add(
        "network.timeout",
        3.0,
        help="deadline in seconds of each DNS query, TCP connect, TLS connect+handshake, NTP query, "
        "and of each whole HTTP request (connect, TLS, headers, body, redirects)",
    )
    add(
        "network.dns_names",
        ["localhost", socket.gethostname()],
        help="names that must resolve (default: localhost and this host's name)",
    )
    add(
        "network.resolvers",
        [],
        help="DNS servers 'ip[:port]' to resolve network.dns_names and endpoint "
        "hosts through, in order (empty: the system resolver: /etc/hosts, then getaddrinfo)",
    )
    add(
        "network.resolv_conf", "/etc/resolv.conf", help="resolver configuration whose nameservers must answer"
    )
    add("network.resolv_conf_port", 53, help="port to query resolv.conf nameservers on (tests)")
    add(
        "network.probe_remote_resolvers",
        False,
        help="also query resolv.conf nameservers that are not on "
        "loopback (off by default so that a bare run never leaves the host)",
    )
    add(
        "network.resolver_probe_name",
        "localhost",
        help="name asked of resolv.conf nameservers (any reply "
        "counts, NXDOMAIN included: the server is alive)",
    )
    add(
        "network.tcp_endpoints",
        [],
        help="'host:port' endpoints that must accept TCP connections "
        "(API :6443, Talos apid :50000, RethinkDB :28015 ...)",
    )
    add("network.https_endpoints", [], help="URLs that must answer over HTTP(S) with a valid certificate")
    add(
        "network.ca_bundle",
        None,
        kind="str",
        help="CA bundle (PEM) for the TLS/HTTPS checks; None: the "
        "system trust store. Verification is always on",
    )
    add("network.tls_warn_days", 30, help="warn when a server certificate expires within this many days")
    add("network.pod_cidr", "10.244.0.0/16", help="pod network CIDR (flannel's default)")
    add("network.service_cidr", "10.96.0.0/12", help="service network CIDR (kubeadm's default)")
    add("network.metallb_pool", [], help="MetalLB address pools: CIDRs or 'first-last' ranges")
    add(
        "network.host_cidrs",
        [],
        help="other host/LAN networks to keep clear (the local interfaces' networks are always included)",
    )
    add("network.tailnet_ranges", [TAILNET_V4, TAILNET_V6], help="Tailscale address ranges (CGNAT + ULA)")
    add("network.cni_mtu", None, kind="int", help="MTU the CNI is configured with (None: the CNI derives it)")
    add("network.cni_overhead", 50, help="encapsulation bytes the CNI adds (VXLAN 50, WireGuard 80, none 0)")
    add(
        "network.mtu_interfaces",
        [],
        help="interfaces pod traffic crosses (empty: the default-route "
        "interfaces, plus tailscale0 when present)",
    )
    add("network.ntp_servers", [], help="'host[:port]' NTP servers that must answer an SNTP query")
    _registry_probe.add_settings(add)


@hookimpl
def mgn_configure(config: Config) -> None:
    _registry_probe.mark_secrets(config)  # registry passwords are secrets of the whole run


@hookimpl
def mgn_register_checks(registry: Registry, config: Config) -> None:
    urls = list(dict.fromkeys(config["network.https_endpoints"]))
    tcp = [str(parse_endpoint(e)) for e in config["network.tcp_endpoints"]]
    tcp += [str(url_endpoint(u)) for u in urls]  # TLS and HTTP checks require these
    for func in (
        _dns_check(list(dict.fromkeys(config["network.dns_names"]))),
        _tcp_check(list(dict.fromkeys(tcp))),
        *_tls_and_http_checks(urls),
        _ntp_check(list(dict.fromkeys(config["network.ntp_servers"]))),
        _registry_probe.registry_check(list(dict.fromkeys(config["network.images"]))),
    ):
        registry.add_check(func)


def _resolvers(config: Config) -> list[Any]:
    return [parse_resolver(r) for r in config["network.resolvers"]]


def _host(config: Config) -> Host:
    return Host(config["network.root"])


# -- interfaces and DNS ---------------------------------------------------------------------


@check(
    id="network.interface.default",
    gates=["install"],
    title="An interface with an address and a default route",
    remediation="bring an interface up with an address (`ip addr`, netplan/NetworkManager) and add a "
    "default route (`ip route add default via <gateway>`)",
)
def check_interface_default(config: Config) -> dict[str, object]:
    import psutil

    linux_only()
    stats = psutil.net_if_stats()
    addresses: dict[str, list[str]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        if name == "lo" or not stats.get(name) or not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(addr.address.split("%", 1)[0])
                if not (ip.is_loopback or ip.is_link_local):
                    addresses.setdefault(name, []).append(str(ip))
    assert addresses, "no interface is up with a non-loopback, non-link-local address"
    routes = _host(config).default_routes()
    assert routes, "no default route (IPv4 /proc/net/route or IPv6 /proc/net/ipv6_route)"
    shown = ", ".join(f"{r.iface} via {r.gateway}" for r in routes)
    iface = routes[0].iface
    return {
        "message": f"default route {shown}; {iface} has {', '.join(addresses.get(iface, ['no address']))}",
        "addresses": addresses,
        "default_routes": [f"{r.iface} {r.gateway}" for r in routes],
    }


def _describe(answer: Answer) -> str:
    via = f" via CNAME {' → '.join(answer.cnames)}" if answer.cnames else ""
    return f"{answer.name} → {', '.join(answer.addresses)}{via} (answered by {answer.source})"


def _dns_check(names: list[str]) -> Callable[..., Any]:
    if not names:
        return nothing_configured("network.dns.resolve", "Names resolve", "network.dns_names")

    @check(
        id="network.dns.resolve",
        gates=["install"],
        title="Name resolves",
        remediation="fix the record, or the resolvers: network.resolvers / /etc/resolv.conf "
        "(`resolvectl query NAME` or `dig NAME @SERVER` shows what they say)",
    )
    @parametrize("name", names)
    def check_dns_resolve(config: Config, name: str) -> dict[str, object]:
        answer = resolve(name, _resolvers(config), config["network.timeout"], _host(config))
        assert answer.ok, f"{name}: {answer.error}"
        return {
            "message": _describe(answer),
            "addresses": answer.addresses,
            "resolver": answer.source,
            "cnames": answer.cnames,
            "tried": answer.tried,
        }

    return check_dns_resolve


@check(
    id="network.dns.resolver",
    gates=["install"],
    title="The resolvers in resolv.conf answer",
    remediation="point /etc/resolv.conf at a working resolver (systemd-resolved: `resolvectl status`; "
    "or `nameserver <ip>` of your DNS server)",
)
def check_dns_resolver(config: Config) -> dict[str, object]:
    linux_only()
    path = config["network.resolv_conf"]
    servers = _host(config).nameservers(path)
    assert servers is not None, f"{path} does not exist: no DNS resolver configured"
    if not servers:
        warn(f"{path} has no nameserver line (glibc then tries 127.0.0.1:53)")
    port, timeout = config["network.resolv_conf_port"], config["network.timeout"]
    remote = [s for s in servers if not ipaddress.ip_address(s.split("%", 1)[0]).is_loopback]
    probed = servers if config["network.probe_remote_resolvers"] else [s for s in servers if s not in remote]
    if not probed:
        skip(
            f"nameservers {', '.join(remote)} are not on loopback; set "
            "network.probe_remote_resolvers=true to query them"
        )
    answers, failures = {}, []
    for server in probed:
        try:
            target = parse_resolver(host_port(server, port))
            answers[server] = probe_server(target, config["network.resolver_probe_name"], timeout)
        except (OSError, ValueError) as exc:
            failures.append(str(exc))
    assert answers, "no resolver in resolv.conf answered: " + "; ".join(failures)
    shown = ", ".join(f"{s} answered {rcode}" for s, rcode in answers.items())
    if failures:
        warn(f"{shown}; but {'; '.join(failures)}")
    return {"message": shown, "unprobed": [s for s in servers if s not in probed]}


# -- TCP, TLS, HTTP -------------------------------------------------------------------------


def _addresses(config: Config, host: str) -> list[str]:
    """Addresses of an endpoint host; a DNS failure is a failure of the check, said as such."""
    answer = resolve(host, _resolvers(config), config["network.timeout"], _host(config))
    assert answer.ok, f"DNS failure for {host}: {answer.error}"
    return answer.addresses


def _tcp_check(endpoints: list[str]) -> Callable[..., Any]:
    if not endpoints:
        return nothing_configured("network.tcp.connect", "TCP endpoints accept connections", "network.tcp_endpoints")

    @check(
        id="network.tcp.connect",
        gates=["install"],
        title="TCP endpoint accepts connections",
        remediation="refused: start the service or fix the port; timed out: open the firewall "
        "(`nft list ruleset`, security groups) or fix routing; DNS failure: see network.dns.*",
    )
    @parametrize("endpoint", endpoints)
    def check_tcp_connect(config: Config, endpoint: str) -> dict[str, object]:
        target = parse_endpoint(endpoint)
        timeout = config["network.timeout"]
        failures: list[TcpFailure] = []
        for address in _addresses(config, target.host):
            try:
                elapsed = tcp_connect(address, target.port, timeout)
            except TcpFailure as exc:
                failures.append(exc)
                continue
            return {
                "message": f"connected to {address}:{target.port} in {elapsed * 1000:.1f} ms",
                "address": address,
            }
        raise AssertionError("; ".join(str(f) for f in failures))

    return check_tcp_connect


def _tls_and_http_checks(urls: list[str]) -> list[Callable[..., Any]]:
    if not urls:
        return [
            nothing_configured("network.tls.certificate", "TLS certificates are valid", "network.https_endpoints"),
            nothing_configured("network.https.get", "HTTPS endpoints answer", "network.https_endpoints"),
        ]
    secure = [u for u in urls if u.startswith("https://")]
    out = [_tls_check(url) for url in secure]
    out += [_http_check(url) for url in urls]
    return out


def _tls_check(url: str) -> Callable[..., Any]:
    # One function per URL: each requires the TCP check of its own host:port.
    endpoint = str(url_endpoint(url))

    @check(
        id="network.tls.certificate",
        gates=["install"],
        title="TLS certificate is valid (chain, name, expiry)",
        requires=[f"network.tcp.connect[{endpoint}]"],
        remediation="renew or reissue the server certificate for this host name with the full chain; "
        "for a private CA set network.ca_bundle to its PEM file",
    )
    @parametrize("url", [url])
    def check_tls_certificate(config: Config, url: str) -> dict[str, object]:
        target = url_endpoint(url)
        timeout, margin = config["network.timeout"], config["network.tls_warn_days"]
        address = _addresses(config, target.host)[0]
        try:
            info, version = verify_server(
                address, target.port, target.host, config["network.ca_bundle"], timeout
            )
        except TlsFailure as exc:
            raise AssertionError(f"{target}: {exc}") from None
        days = info.days_left()
        if days < margin:
            warn(
                f"certificate for {target.host} expires in {days:.1f} days ({info.not_after:%Y-%m-%d}), "
                f"within the {margin}-day margin"
            )
        return {
            "message": f"{version}, issued by {info.issuer}, valid until {info.not_after:%Y-%m-%d} "
            f"({days:.0f} days)",
            **info.to_dict(),
        }

    return check_tls_certificate


def _http_check(url: str) -> Callable[..., Any]:
    endpoint = str(url_endpoint(url))
    needs = (
        f"network.tls.certificate[{url}]"
        if url.startswith("https://")
        else f"network.tcp.connect[{endpoint}]"
    )

    @check(
        id="network.https.get",
        gates=["install"],
        title="HTTP(S) endpoint answers",
        requires=[needs],
        remediation="check the service behind the URL (its logs, `curl -v URL`); a timeout names the "
        "limit: raise network.timeout for slow endpoints",
    )
    @parametrize("url", [url])
    def check_https_get(config: Config, url: str) -> dict[str, object]:
        import httpx  # lazy: ~0.2 s of imports only when an HTTPS endpoint is configured

        timeout = config["network.timeout"]
        started = time.monotonic()
        try:
            with GuardedClient(config["network.ca_bundle"], timeout) as client:
                response = client.get(url)
        except HttpFailure as exc:
            raise AssertionError(str(exc)) from None
        except httpx.ConnectTimeout:
            raise AssertionError(f"connect to {url} timed out after {timeout:g} s") from None
        except httpx.RemoteProtocolError as exc:
            raise AssertionError(
                f"{url}: the server closed the connection without a response ({exc})"
            ) from None
        except httpx.ReadError as exc:
            raise AssertionError(f"{url}: connection reset while reading the response ({exc})") from None
        except httpx.ConnectError as exc:
            raise AssertionError(f"cannot connect to {url}: {exc}") from None
        except httpx.HTTPError as exc:  # e.g. a redirect to a scheme that is not http(s)
            raise AssertionError(f"{url}: {exc}") from None
        elapsed = (time.monotonic() - started) * 1000
        status = response.status_code
        hops = [shown_url(r.request.url.join(r.headers["location"])) for r in response.history]
        via = f" (after {len(hops)} redirect{'s' if len(hops) > 1 else ''} to {hops[-1]})" if hops else ""
        shown = f"HTTP {status} {response.reason_phrase} in {elapsed:.0f} ms{via}"
        assert status < 500, f"{url} answered {shown}: the server is failing"
        if status >= 400:
            warn(f"{url} answered {shown} (reachable, but the request was rejected)")
        details: dict[str, object] = {"message": shown, "status": status, "elapsed_ms": round(elapsed, 1)}
        if hops:
            details["redirects"] = hops
        return details

    return check_https_get


# -- address plan ---------------------------------------------------------------------------


def _host_networks() -> list[Named]:
    import psutil

    out = []
    for name, addrs in psutil.net_if_addrs().items():
        if name == "lo" or name.startswith("tailscale"):  # tailscale0 sits in the tailnet by design
            continue
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6) or not addr.netmask:
                continue
            # psutil gives IPv6 masks in address form, which ip_interface does not take.
            prefix = bin(int(ipaddress.ip_address(addr.netmask))).count("1")
            iface = ipaddress.ip_interface(f"{addr.address.split('%', 1)[0]}/{prefix}")
            if not (iface.ip.is_loopback or iface.ip.is_link_local):
                out.append(Named(f"host network {name}", iface.network))
    return out


@check(
    id="network.cidr.overlap",
    gates=["install"],
    title="Pod, service, MetalLB, host and tailnet ranges do not overlap",
    remediation="pick non-overlapping ranges: change network.pod_cidr / network.service_cidr (and the "
    "cluster's podSubnet/serviceSubnet), the MetalLB pool, or the LAN",
)
def check_cidr_overlap(config: Config) -> dict[str, object]:
    items: list[Named] = []
    for label, key in (("pod CIDR", "network.pod_cidr"), ("service CIDR", "network.service_cidr")):
        if config[key]:
            items += [Named(label, net) for net in parse_ranges(config[key])]
    for text in config["network.metallb_pool"]:
        items += [Named(f"MetalLB pool {text}", net) for net in parse_ranges(text)]
    for text in config["network.host_cidrs"]:
        items += [Named("host network (configured)", net) for net in parse_ranges(text)]
    items += _host_networks()
    items += [
        Named("Tailscale range", net) for t in config["network.tailnet_ranges"] for net in parse_ranges(t)
    ]
    pairs = find_overlaps(items)
    assert not pairs, "; ".join(f"{a} overlaps {b}" for a, b in pairs)
    return {"message": f"{len(items)} ranges, no overlap", "ranges": [str(i) for i in items]}


@check(
    id="network.mtu",
    gates=["install"],
    title="CNI MTU fits the interfaces pod traffic crosses",
    severity="warning",
    remediation='set the CNI MTU (flannel: net-conf.json "MTU"; Cilium: --mtu) and network.cni_mtu to '
    "at most the smallest interface MTU minus network.cni_overhead (tailscale0: 1280)",
)
def check_mtu(config: Config) -> dict[str, object]:
    import psutil

    stats = psutil.net_if_stats()
    names = list(config["network.mtu_interfaces"])
    if not names:
        names = list(dict.fromkeys(r.iface for r in _host(config).default_routes()))
        names += [n for n in stats if n.startswith("tailscale")]
    if not names:
        skip("no default-route interface and network.mtu_interfaces is empty")
    absent = [n for n in names if n not in stats]
    mtus = {n: stats[n].mtu for n in names if n in stats}
    if not mtus:
        warn(f"interfaces not present: {', '.join(absent)}")
    overhead, cni = config["network.cni_overhead"], config["network.cni_mtu"]
    smallest = min(mtus, key=lambda n: mtus[n])
    limit = mtus[smallest] - overhead
    shown = ", ".join(f"{n} {m}" for n, m in mtus.items())
    details: dict[str, object] = {"mtu": mtus, "max_cni_mtu": limit}
    if cni is None:
        derived = max(mtus.values()) - overhead  # what a CNI picks from the default interface
        assert derived <= limit, (
            f"network.cni_mtu unset: a CNI deriving {derived} from the default interface "
            f"exceeds {smallest} {mtus[smallest]} - {overhead} = {limit}"
        )
        return {"message": f"{shown}; CNI MTU not configured (at most {limit} fits)", **details}
    assert cni <= limit, (
        f"CNI MTU {cni} + {overhead} overhead exceeds {smallest} MTU {mtus[smallest]} (max {limit})"
    )
    if absent:
        warn(f"CNI MTU {cni} fits {shown}, but interfaces not present: {', '.join(absent)}")
    return {"message": f"CNI MTU {cni} fits {shown} (max {limit})", **details}


# -- time -----------------------------------------------------------------------------------


def _ntp_check(servers: list[str]) -> Callable[..., Any]:
    if not servers:
        return nothing_configured("network.ntp.reach", "NTP servers answer", "network.ntp_servers")

    @check(
        id="network.ntp.reach",
        gates=["install"],
        title="NTP server answers",
        severity="warning",
        remediation="allow 123/udp to the server, or pick a reachable one (network.ntp_servers and "
        "the chrony/timesyncd configuration)",
    )
    @parametrize("server", servers)
    def check_ntp_reach(config: Config, server: str) -> dict[str, object]:
        target = parse_endpoint(server, default_port=123)
        address = _addresses(config, target.host)[0]
        try:
            reply = query(address, target.port, config["network.timeout"])
        except SntpError as exc:
            raise AssertionError(str(exc)) from None
        return {
            "message": f"stratum {reply.stratum} ({reply.reference}), offset {reply.offset_s:+.3f} s, "
            f"delay {reply.delay_s * 1000:.1f} ms",
            "offset_s": reply.offset_s,
            "stratum": reply.stratum,
        }

    return check_ntp_reach
