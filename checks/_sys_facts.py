"""Host facts for the firewall, services and packages checks, read below ``Host.root``.

Firewall rules (ufw's user.rules, firewalld's zone and service XML), systemd unit state (unit
files and ``*.wants/`` links) and the dpkg status database are plain files, so tests fake them
with a tree; the process table comes from psutil (the live machine). Nothing is shelled out:
no ``ufw status``, ``firewall-cmd``, ``systemctl`` or ``dpkg-query``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._host import Host, parse_assignments

__all__ = [
    "Firewall",
    "PortSpec",
    "UnitState",
    "dpkg_installed",
    "firewalld",
    "parse_port",
    "running_processes",
    "ufw",
    "unit_state",
]


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    proto: str  # tcp | udp

    def __str__(self) -> str:
        return f"{self.port}/{self.proto}"


def parse_port(value: object) -> PortSpec:
    """6443, "6443", "8472/udp" → PortSpec (TCP unless a protocol is given)."""
    text = str(value).strip().lower()
    number, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp") or not number.isdigit() or not 0 < int(number) < 65536:
        raise ValueError(f"{value!r}: expected a port (6443) or port/protocol (8472/udp)")
    return PortSpec(int(number), proto)


@dataclass(frozen=True, slots=True)
class Firewall:
    """An active host firewall and what its configuration allows in."""

    name: str  # ufw | firewalld
    evidence: str
    accept_all: bool = False  # default policy / zone target accepts everything
    rules: tuple[tuple[str, str, frozenset[int]], ...] = ()  # (action, proto, ports), in order
    notes: tuple[str, ...] = field(default_factory=tuple)

    def allows(self, spec: PortSpec) -> bool:
        for action, proto, ports in self.rules:  # first match wins (ufw semantics)
            if proto in (spec.proto, "any") and spec.port in ports:
                return action in ("allow", "limit")
        return self.accept_all


_ALL_PORTS = frozenset(range(1, 65536))


def _port_set(text: str) -> frozenset[int]:
    """ "6443", "2379:2380", "2379-2380", "80,443,8000:8010" → ports; "any" → every port."""
    if text == "any":
        return _ALL_PORTS
    ports: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.replace("-", ":").partition(":")
        if not low.isdigit() or (sep and not high.isdigit()):
            return frozenset()
        ports.update(range(int(low), int(high if sep else low) + 1))
    return frozenset(ports)


def ufw(host: Host) -> Firewall | None:
    """ufw when /etc/ufw/ufw.conf says ENABLED=yes (ufw has no daemon: the flag is its state)."""
    if parse_assignments(host.read("/etc/ufw/ufw.conf")).get("ENABLED", "").lower() != "yes":
        return None
    policy = parse_assignments(host.read("/etc/default/ufw")).get("DEFAULT_INPUT_POLICY", "DROP").upper()
    rules = []
    # "### tuple ### allow tcp 6443 0.0.0.0/0 any 0.0.0.0/0 in" (an app rule adds two fields
    # before the direction, a comment=… may follow): action proto dport dst sport src … dir.
    for line in (host.read("/etc/ufw/user.rules") or "").splitlines():
        if not line.startswith("### tuple ###"):
            continue
        fields = [f for f in line.split()[3:] if not f.startswith("comment=")]
        if len(fields) < 7 or not fields[-1].startswith("in"):
            continue
        rules.append((fields[0].split("_", 1)[0], fields[1], _port_set(fields[2])))
    return Firewall(
        "ufw",
        "/etc/ufw/ufw.conf ENABLED=yes",
        accept_all=policy == "ACCEPT",
        rules=tuple(rules),
        notes=(f"default input policy {policy} (/etc/default/ufw)",),
    )


def _xml(host: Host, *candidates: str) -> tuple[ET.Element, str] | None:
    for path in candidates:
        text = host.read(path)
        if text is not None:
            try:
                return ET.fromstring(text), path
            except ET.ParseError:
                continue
    return None


def _xml_rules(element: ET.Element) -> list[tuple[str, str, frozenset[int]]]:
    """The ``<port>`` elements of a zone or service: each lets its ports in."""
    return [("allow", p.get("protocol", "tcp"), _port_set(p.get("port", ""))) for p in element.findall("port")]


_FIREWALLD_DIRS = ("/etc/firewalld", "/usr/lib/firewalld", "/lib/firewalld")


def firewalld(host: Host, running: bool) -> Firewall | None:
    """firewalld when its process runs; its default zone's *permanent* configuration (the
    runtime one is only reachable over D-Bus)."""
    if not running:
        return None
    zone = parse_assignments(host.read("/etc/firewalld/firewalld.conf")).get("DefaultZone") or "public"
    found = _xml(host, *(f"{d}/zones/{zone}.xml" for d in _FIREWALLD_DIRS))
    if found is None:
        return Firewall("firewalld", "firewalld process running", notes=(f"zone {zone}: no zone file",))
    root, path = found
    rules = _xml_rules(root)
    for service in root.findall("service"):
        name = service.get("name", "")
        svc = _xml(host, *(f"{d}/services/{name}.xml" for d in _FIREWALLD_DIRS))
        if svc is not None:
            rules += _xml_rules(svc[0])
    target = root.get("target", "default").upper()
    return Firewall(
        "firewalld",
        "firewalld process running",
        accept_all=target == "ACCEPT",
        rules=tuple(rules),
        notes=(f"default zone {zone} ({path}, target {target})",),
    )


def running_processes(names: Iterable[str], host: Host | None = None) -> dict[str, int]:
    """{name: pid} for each wanted name that a running process has (its comm, which the
    kernel truncates to 15 characters, or the base name of its argv[0]); the process table
    is ``host``'s (one scan per run), or a fresh scan."""
    wanted = set(names)
    found: dict[str, int] = {}
    for pid, comm, argv0 in (host or Host()).processes():
        for name in wanted - found.keys():
            if comm == name or argv0 == name or (len(comm) == 15 and name.startswith(comm)):
                found[name] = pid
    return found


_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass(frozen=True, slots=True)
class UnitState:
    state: str  # enabled | disabled | masked | missing | no-systemd
    evidence: str


def unit_state(host: Host, unit: str) -> UnitState:
    """Whether systemd would start ``unit`` at boot: a ``<target>.wants/<unit>`` link."""
    if not any(host.path(d).is_dir() for d in _UNIT_DIRS):
        return UnitState("no-systemd", "no systemd unit directories (" + ", ".join(_UNIT_DIRS) + ")")
    link = host.path(f"/etc/systemd/system/{unit}")
    if link.is_symlink() and os.readlink(link) == "/dev/null":
        return UnitState("masked", f"/etc/systemd/system/{unit} → /dev/null")
    for directory in _UNIT_DIRS:
        base = host.path(directory)
        if not base.is_dir():
            continue
        for wants in sorted(base.glob("*.wants")):
            entry = wants / unit
            if entry.is_symlink() or entry.exists():
                return UnitState("enabled", f"{directory}/{wants.name}/{unit}")
    for directory in _UNIT_DIRS:
        if host.path(f"{directory}/{unit}").exists():
            return UnitState("disabled", f"{directory}/{unit} installed, no *.wants/ link")
    return UnitState("missing", f"no {unit} in {', '.join(_UNIT_DIRS)}")


def dpkg_installed(host: Host) -> dict[str, str] | None:
    """{package: dpkg state} from /var/lib/dpkg/status ("installed", "config-files", …);
    None when there is no dpkg database."""
    text = host.read("/var/lib/dpkg/status")
    if text is None:
        return None
    out: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        name = state = ""
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Status:"):
                state = line.split()[-1]
        if name and (state == "installed" or name not in out):
            out[name] = state
    return out
