"""Address arithmetic with ``ipaddress``: CIDR overlaps and NO_PROXY coverage."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["TAILNET_V4", "TAILNET_V6", "Named", "find_overlaps", "no_proxy_covers", "parse_ranges"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TAILNET_V4 = "100.64.0.0/10"
TAILNET_V6 = "fd7a:115c:a1e0::/48"


@dataclass(frozen=True, slots=True)
class Named:
    """A network with the label the report uses ("pod CIDR", "host network eth0")."""

    label: str
    network: Network

    def __str__(self) -> str:
        return f"{self.label} {self.network}"


def parse_ranges(text: str) -> list[Network]:
    """A CIDR ("10.0.0.0/24"), a single address, or a MetalLB-style range
    ("192.168.1.240-192.168.1.250") as the networks that cover it exactly."""
    text = text.strip()
    if "-" in text and "/" not in text:
        first, _, last = text.partition("-")
        start, end = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
        if (
            isinstance(start, ipaddress.IPv4Address)
            and isinstance(end, ipaddress.IPv4Address)
            and start <= end
        ):
            return list(ipaddress.summarize_address_range(start, end))
        if (
            isinstance(start, ipaddress.IPv6Address)
            and isinstance(end, ipaddress.IPv6Address)
            and start <= end
        ):
            return list(ipaddress.summarize_address_range(start, end))
        raise ValueError(f"bad address range {text!r}")
    return [ipaddress.ip_network(text, strict=False)]


def find_overlaps(items: Sequence[Named]) -> list[tuple[Named, Named]]:
    """Every overlapping pair of different labels (same-label pieces of one range are fine)."""
    pairs = []
    for i, left in enumerate(items):
        for right in items[i + 1 :]:
            if left.label == right.label or left.network.version != right.network.version:
                continue
            if left.network.overlaps(right.network):
                pairs.append((left, right))
    return pairs


def no_proxy_covers(no_proxy: Iterable[str], target: str) -> bool:
    """Whether a NO_PROXY list exempts ``target`` (a host name, an address, or a CIDR), with
    the rules Go's httpproxy and curl share: "*" covers all; an address or CIDR entry covers
    addresses and CIDRs inside it; a name entry covers itself and its subdomains (a leading
    dot is optional)."""
    entries = [e.strip().lower() for e in no_proxy if e.strip()]
    if "*" in entries:
        return True
    target = target.strip().lower()
    try:
        wanted: Network | None = ipaddress.ip_network(target, strict=False)
    except ValueError:
        wanted = None
    for entry in entries:
        host = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # drop a ":port"
        host = host.strip("[]")
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError:
            net = None
        if wanted is not None:
            if net is not None and wanted.version == net.version and wanted.subnet_of(net):  # type: ignore[arg-type]
                return True
            continue
        if net is None:
            suffix = host.lstrip(".")
            if target == suffix or target.endswith("." + suffix):
                return True
    return False
