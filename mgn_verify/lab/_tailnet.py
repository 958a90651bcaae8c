"""The lab's tailnet: one roster of users and nodes shared by the Tailscale and Headscale simulators.

A real tailscaled learns its peers from the control server, so the node keys, addresses and
names in ``tailscale status --json`` match the nodes Headscale lists. Both simulators render
this one roster, so a check that cross-references them (``this node is registered and online in
headscale``) sees a consistent world.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["Tailnet", "TailnetNode", "TailnetUser", "iso_z"]

_ALNUM = string.ascii_letters + string.digits


def iso_z(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, as both Go's time.Time and protojson print it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _derived_hex(kind: str, name: str) -> str:
    # Deterministic per node name: the same node has the same keys in both simulators and in
    # every lab run, which keeps failure messages comparable between runs.
    return hashlib.sha256(f"mgn-lab:{kind}:{name}".encode()).hexdigest()


@dataclass(frozen=True)
class TailnetUser:
    """A Headscale user; tailscaled shows it as a ``User`` profile keyed by its decimal id."""

    id: int
    name: str
    created: datetime


@dataclass(frozen=True)
class TailnetNode:
    """One machine on the tailnet (the operator host itself or a peer)."""

    id: int
    hostname: str
    ipv4: str
    ipv6: str
    endpoint: str
    user_id: int
    created: datetime
    os: str = "linux"
    relay: str = "fra"

    @property
    def node_key(self) -> str:
        return "nodekey:" + _derived_hex("node", self.hostname)

    @property
    def machine_key(self) -> str:
        return "mkey:" + _derived_hex("machine", self.hostname)

    @property
    def disco_key(self) -> str:
        return "discokey:" + _derived_hex("disco", self.hostname)

    @property
    def ips(self) -> list[str]:
        return [self.ipv4, self.ipv6]

    @property
    def allowed_ips(self) -> list[str]:
        return [f"{self.ipv4}/32", f"{self.ipv6}/128"]


def _random_alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass(frozen=True)
class Tailnet:
    """Users, nodes and key-expiry moments of the lab tailnet. ``nodes[0]`` is this host."""

    users: tuple[TailnetUser, ...]
    nodes: tuple[TailnetNode, ...]
    base_domain: str
    key_expiry: datetime
    expired_at: datetime
    auth_key_prefix: str = field(default_factory=lambda: _random_alnum(12))

    @property
    def self_node(self) -> TailnetNode:
        return self.nodes[0]

    @property
    def peers(self) -> tuple[TailnetNode, ...]:
        return self.nodes[1:]

    def user(self, user_id: int) -> TailnetUser:
        return next(u for u in self.users if u.id == user_id)

    def dns_name(self, node: TailnetNode) -> str:
        # Go's status always writes the fully qualified form with the trailing dot.
        return f"{node.hostname}.{self.base_domain}."

    @classmethod
    def default(cls, now: datetime | None = None) -> Tailnet:
        """The GuildNet shape: this operator host, the Host App and a two-node Talos cluster."""
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        created = now - timedelta(days=30)
        user = TailnetUser(id=1, name="guildnet", created=created)
        names = ["mgn-operator", "guildnet-host", "talos-cp-1", "talos-worker-1"]
        nodes = tuple(
            TailnetNode(
                id=index,
                hostname=name,
                ipv4=f"100.64.0.{index}",
                ipv6=f"fd7a:115c:a1e0::{index}",
                # Documentation addresses (RFC 5737): nothing in the lab ever dials them.
                endpoint=f"192.0.2.{10 + index}:41641",
                user_id=user.id,
                created=created + timedelta(minutes=index),
            )
            for index, name in enumerate(names, start=1)
        )
        return cls(
            users=(user,),
            nodes=nodes,
            base_domain="guildnet.lab",
            key_expiry=now + timedelta(days=150),
            expired_at=now - timedelta(days=1),
        )
