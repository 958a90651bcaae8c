"""Per-peer checks of the tailscale layer, one instance per ``tailscale.expected_peers`` entry:
``tailscale.peer.online[<peer>]`` and ``tailscale.peer.direct[<peer>]`` (which requires the
first: a peer that is offline has no path to judge)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mgn_verify import check, parametrize, skip, warn

from ._common import nothing_configured
from ._ts_common import ago, status_of

if TYPE_CHECKING:
    from mgn_verify.clients.tailscale import LocalAPIClient

__all__ = ["peer_checks"]


def peer_checks(peers: list[str]) -> list[Callable[..., Any]]:
    if not peers:
        return [nothing_configured(
            "tailscale.peer.online", "Expected peers are online", "tailscale.expected_peers",
            requires=["tailscale.self.online"],
            remediation="list the peers GuildNet needs (Host App, cluster nodes) in tailscale.expected_peers")]
    return [parametrize("peer", peers)(_online()), parametrize("peer", peers)(_direct())]


def _online() -> Callable[..., Any]:
    @check(
        id="tailscale.peer.online",
        title="An expected peer is online on the tailnet",
        requires="tailscale.self.online",
        remediation="on that machine: `sudo systemctl start tailscaled && tailscale up --login-server=<url>`; "
        "`headscale nodes list` shows whether control sees it",
    )
    def check_peer_online(peer: str, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
        status = status_of(tailscale_localapi)
        found = status.find_peer(peer)
        known = ", ".join(sorted(p.label for p in status.peers)) or "none"
        assert found is not None, f"{peer} is not a peer of this node (peers: {known})"
        where = f"{found.label} ({', '.join(found.tailscale_ips[:1]) or 'no address'})"
        assert found.online, (f"{where} is offline: not connected to the control server, last seen "
                              f"{ago(found.last_seen)}")
        return {"message": f"{where} is online", "peer": found.label, "addresses": list(found.tailscale_ips)}

    return check_peer_online


def _direct() -> Callable[..., Any]:
    @check(
        id="tailscale.peer.direct",
        title="An expected peer is reached directly, not only through a DERP relay",
        requires="tailscale.peer.online[{peer}]",
        severity="warning",
        remediation="let UDP through between the two hosts (41641/udp, or the port tailscaled uses; STUN "
        "3478/udp outbound); `tailscale netcheck` shows NAT and UDP, `tailscale ping <peer>` the path",
    )
    def check_peer_direct(peer: str, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
        status = status_of(tailscale_localapi)
        found = status.find_peer(peer)
        if found is None:  # the online check failed; kept for a direct call
            skip(f"{peer} is not a peer of this node")
        if found.direct:
            return {"message": f"{found.label} is reached directly at {found.cur_addr}", "path": "direct",
                    "endpoint": found.cur_addr}
        if not found.active:
            skip(f"{found.label} is idle (no recent traffic), so no path is set up to judge; "
                 f"`tailscale ping {found.label}` sets one up")
        region = found.relay or "unknown"
        warn(f"{found.label} is reached only through the DERP relay region {region!r} (no direct UDP path): "
             f"higher latency and throughput limits; `tailscale ping {found.label}` and `tailscale netcheck` "
             f"show why")

    return check_peer_direct
