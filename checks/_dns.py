"""Name resolution that says who answered: /etc/hosts, getaddrinfo, or a named DNS server.

dnspython does not read /etc/hosts, so "the system resolver" is modelled as nsswitch does it
for the common ``files dns`` order: /etc/hosts first, then getaddrinfo (which also covers
nss-myhostname and systemd-resolved). Explicit resolvers are asked one by one, in order, so
a report can name the one that answered and what it said.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._host import Host
from ._net import host_port, split_host_port

__all__ = ["Answer", "Resolver", "parse_resolver", "probe_server", "resolve"]


if TYPE_CHECKING:
    import dns.message


def _dnspython() -> None:
    """Import dnspython on first use: loading the network plugin must not cost ~0.1 s."""
    global dns
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype


@dataclass(frozen=True, slots=True)
class Resolver:
    ip: str
    port: int = 53

    def __str__(self) -> str:
        return host_port(self.ip, self.port)


def parse_resolver(text: str) -> Resolver:
    """ "ip", "ip:port", "[v6]:port" or a bare IPv6 address."""
    ip, port_text = split_host_port(text.strip())
    port = 53 if port_text is None else int(port_text)
    ipaddress.ip_address(ip)  # raises ValueError on a name: resolvers must be addresses
    return Resolver(ip, port)


@dataclass(slots=True)
class Answer:
    """The outcome of resolving one name. ``error`` is set when no address came back; its
    ``kind`` is "nxdomain", "nodata", "timeout", "refused" (server failure) or "error"."""

    name: str
    addresses: list[str] = field(default_factory=list)
    cnames: list[str] = field(default_factory=list)
    source: str = ""
    error: str = ""
    kind: str = ""
    tried: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.addresses)


def _query(name: str, rdtype: str, server: Resolver, timeout: float) -> dns.message.Message:
    query = dns.message.make_query(dns.name.from_text(name), rdtype)
    response = dns.query.udp(query, server.ip, port=server.port, timeout=timeout)
    if response.flags & dns.flags.TC:  # truncated: retry over TCP as a stub resolver would
        response = dns.query.tcp(query, server.ip, port=server.port, timeout=timeout)
    return response


def _ask(name: str, server: Resolver, timeout: float, answer: Answer) -> bool:
    """Ask one server for A and AAAA; True when it gave a definite answer (even negative)."""
    rcodes = []
    for rdtype in ("A", "AAAA"):
        try:
            response = _query(name, rdtype, server, timeout)
        except dns.exception.Timeout:
            answer.tried.append(f"{server}: no answer within {timeout:g} s")
            answer.kind, answer.error = "timeout", f"no answer from {server} within {timeout:g} s"
            return False
        except (OSError, dns.exception.DNSException) as exc:
            answer.tried.append(f"{server}: {exc}")
            answer.kind, answer.error = "error", f"{server}: {exc}"
            return False
        rcodes.append(response.rcode())
        for rrset in response.answer:
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    target = str(rdata.target).rstrip(".")
                    if target not in answer.cnames:
                        answer.cnames.append(target)
                elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    address = str(rdata.address)
                    if address not in answer.addresses:
                        answer.addresses.append(address)
    answer.source = str(server)
    if answer.addresses:
        answer.kind = answer.error = ""
        return True
    if dns.rcode.NXDOMAIN in rcodes:
        answer.kind, answer.error = "nxdomain", f"NXDOMAIN from {server}: the name does not exist"
    elif any(rc not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) for rc in rcodes):
        text = ", ".join(dns.rcode.to_text(rc) for rc in rcodes if rc != dns.rcode.NOERROR)
        answer.kind, answer.error = "refused", f"{server} answered {text}"
        answer.tried.append(answer.error)
        return False  # SERVFAIL/REFUSED: a stub resolver moves on to the next server
    else:
        answer.kind, answer.error = "nodata", f"{server} has no A or AAAA record for {name}"
    return True


def _getaddrinfo(name: str, timeout: float) -> list[str]:
    # getaddrinfo has no timeout of its own: run it on a throwaway thread and stop waiting.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mgn-gai")
    try:
        future = pool.submit(socket.getaddrinfo, name, None, 0, socket.SOCK_STREAM)
        infos = future.result(timeout=timeout)
    finally:
        pool.shutdown(wait=False)
    out: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in out:
            out.append(address)
    return out


def resolve(name: str, resolvers: list[Resolver], timeout: float, host: Host | None = None) -> Answer:
    """Resolve ``name`` through ``resolvers`` in order, or the system path when empty."""
    answer = Answer(name)
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        answer.addresses, answer.source = [name], "literal address"
        return answer
    if resolvers:
        _dnspython()  # only a DNS server needs it: the system path is /etc/hosts and getaddrinfo
        for server in resolvers:
            if _ask(name, server, timeout, answer):
                return answer
        if len(resolvers) > 1 and answer.kind == "timeout":
            answer.error = "no resolver answered: " + "; ".join(answer.tried)
        return answer
    host = host or Host()
    found = host.hosts_lookup(name)
    if found:
        answer.addresses, answer.source = found, "/etc/hosts"
        return answer
    try:
        answer.addresses = _getaddrinfo(name, timeout)
        answer.source = "system resolver (getaddrinfo)"
    except concurrent.futures.TimeoutError:
        answer.kind, answer.error = "timeout", f"system resolver gave no answer within {timeout:g} s"
    except socket.gaierror as exc:
        nx = exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))
        answer.kind = "nxdomain" if nx else "error"
        answer.error = f"system resolver: {exc.strerror or exc}"
    return answer


def probe_server(server: Resolver, name: str, timeout: float) -> str:
    """Ask ``server`` one question and describe its reply; raises TimeoutError or OSError
    when it gives none (any rcode counts as an answer: the server is alive)."""
    _dnspython()
    try:
        response = _query(name, "A", server, timeout)
    except dns.exception.Timeout:
        raise TimeoutError(f"{server} gave no answer within {timeout:g} s") from None
    except dns.exception.DNSException as exc:
        raise OSError(f"{server}: {exc}") from None
    return dns.rcode.to_text(response.rcode())
