"""The lab's tailnet: one roster of users and nodes shared by the Tailscale and Headscale simulators.

A real tailscaled learns its peers from the control server, so the node keys, addresses and
names in ``tailscale status --json`` match the nodes Headscale lists. Both simulators render
this one roster, so a check that cross-references them (``this node is registered and online in
headscale``) sees a consistent world.

The faults that change the tailnet (a peer offline or relayed, this node logged out, stopped,
awaiting approval or with its key expiring, a route not approved) are decided here too, by
``self_view`` and ``peer_view``: both simulators render the same state from the shared fault set.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "DISABLED_ROUTE",
    "OFFLINE_PEER",
    "RELAYED_PEER",
    "ROUTER",
    "PeerView",
    "SelfView",
    "Tailnet",
    "TailnetNode",
    "TailnetUser",
    "iso_z",
    "peer_view",
    "self_view",
]

#: The peers and the route the fault scenarios touch: fixed, so failure messages name them.
RELAYED_PEER = "talos-cp-1"  # tailscale.derp_only: online, reached only through DERP
OFFLINE_PEER = "talos-worker-1"  # tailscale.peer_offline: disconnected from control
ROUTER = "talos-cp-1"  # advertises the cluster's service and pod ranges (a subnet router)
CLUSTER_ROUTES = ("10.96.0.0/12", "10.244.0.0/16")
DISABLED_ROUTE = "10.244.0.0/16"  # headscale.route_disabled: advertised, never approved

Active = Callable[[str], bool]

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
    #: Subnet routes the node advertises (Hostinfo.RoutableIPs; Headscale's availableRoutes).
    routes: tuple[str, ...] = ()

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
    #: The key expiry under ``tailscale.key_expiring``: soon, within any sensible warning margin.
    expiring_at: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    )

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
                routes=CLUSTER_ROUTES if name == ROUTER else (),
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


# -- the state the faults put the tailnet in ------------------------------------------------


@dataclass(frozen=True)
class SelfView:
    """This host as tailscaled and the control server both see it.

    ``state`` is tailscaled's BackendState (``Down``: no daemon at all); ``netmap`` whether the
    daemon holds a network map; ``in_poll`` whether it is connected to control (Headscale's
    ``online``, tailscaled's ``Self.Online``)."""

    state: str
    netmap: bool
    in_poll: bool
    key_expiry: datetime
    expired: bool
    health: tuple[str, ...]
    accept_routes: bool = True


def self_view(tailnet: Tailnet, active: Active) -> SelfView:
    """Decide this host's state from the active faults; the first matching fault wins, in the
    order a real daemon would report them (no daemon, no login, expired key, stopped, waiting)."""
    expiry = tailnet.expiring_at if active("tailscale.key_expiring") else tailnet.key_expiry
    accept = not active("tailscale.accept_routes_off")
    if active("tailscale.down"):
        return SelfView("Down", False, False, expiry, False, ())
    if active("tailscale.needs_login"):
        return SelfView("NeedsLogin", False, False, expiry, False, ("You are logged out.",))
    if active("tailscale.key_expired"):
        # The daemon keeps its network map but logs out: NeedsLogin, Self.Expired.
        return SelfView("NeedsLogin", True, False, tailnet.expired_at, True, ("You are logged out.",))
    if active("tailscale.stopped"):
        # `tailscale down`: the map is kept, the engine and the control poll are paused.
        return SelfView("Stopped", True, False, expiry, False, ("Tailscale is stopped.",))
    if active("tailscale.needs_machine_auth"):
        # Registered and polling, but the control server has not authorized the machine yet.
        return SelfView("NeedsMachineAuth", True, True, expiry, False, ())
    health = ("Some peers are advertising routes but --accept-routes is false",) if not accept else ()
    return SelfView("Running", True, True, expiry, False, health, accept)


@dataclass(frozen=True)
class PeerView:
    """One peer: ``online`` (connected to control), ``direct`` (a UDP path, not only DERP) and
    the routes the control server approved for it."""

    online: bool
    direct: bool
    approved_routes: tuple[str, ...]


def peer_view(node: TailnetNode, active: Active) -> PeerView:
    online = not (active("tailscale.peer_offline") and node.hostname == OFFLINE_PEER)
    direct = online and not (active("tailscale.derp_only") and node.hostname == RELAYED_PEER)
    approved = tuple(
        route
        for route in node.routes
        if not (active("headscale.route_disabled") and route == DISABLED_ROUTE)
    )
    return PeerView(online, direct, approved)
