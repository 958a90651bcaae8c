"""The Headscale checks of the tailscale layer (ids ``headscale.*``, ``layer="tailscale"``).

``headscale.reachable`` (``GET /health``) is the one check that turns a missing or broken
Headscale into a result; ``headscale.api.auth`` proves the API key; the rest require them. The
order matters: with its database down, Headscale cannot validate any key and answers 401 on the
whole API, so a key failure is only believed once ``/health`` passed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mgn_verify import ClientError, Config, check, parametrize, skip, warn

from ._clusters import not_found
from ._ts_common import LAYER, ago, headscale_of, status_of

if TYPE_CHECKING:
    from mgn_verify.clients.headscale import HeadscaleClient, HeadscaleNode, HeadscaleRoute
    from mgn_verify.clients.tailscale import LocalAPIClient

__all__ = ["route_check"]


def _fail(exc: ClientError) -> AssertionError:
    return AssertionError(str(exc))


@check(
    id="headscale.reachable",
    layer=LAYER,
    title="Headscale answers /health",
    remediation="start Headscale (`sudo systemctl start headscale`, or its container) and check its database; "
    "set headscale.url (and headscale.ca_bundle for a private CA)",
)
def check_reachable(plan: Any, headscale_api: HeadscaleClient | None) -> dict[str, Any]:
    if headscale_api is None:
        not_found(plan, LAYER, "no Headscale URL configured", hint="set headscale.url")
    try:
        headscale_api.health()
    except ClientError as exc:
        raise _fail(exc) from None
    return {"message": f"Headscale at {headscale_api.url} is healthy", "url": headscale_api.url}


@check(
    id="headscale.api.auth",
    layer=LAYER,
    title="The Headscale API accepts the API key",
    requires="headscale.reachable",
    remediation="create a key on the Headscale server (`headscale apikeys create --expiration 90d`) and set it "
    "as headscale.api_key (MGN config or --set; it is never shown)",
)
def check_api_auth(headscale_api: HeadscaleClient | None) -> dict[str, Any]:
    client = headscale_of(headscale_api)
    try:
        connected = client.api_health()
    except ClientError as exc:
        raise _fail(exc) from None
    assert connected, f"Headscale at {client.url} reports no database connectivity (/api/v1/health)"
    return {"message": f"the API key is accepted by Headscale at {client.url}"}


@check(
    id="headscale.version",
    layer=LAYER,
    title="Headscale is a version whose API is fully understood",
    requires="headscale.reachable",
    severity="warning",
    remediation="upgrade Headscale to headscale.min_version or newer (https://headscale.net/stable/setup/upgrade/)",
)
def check_version(config: Config, headscale_api: HeadscaleClient | None) -> dict[str, Any]:
    from mgn_verify.clients.tailscale import version_tuple

    client = headscale_of(headscale_api)
    minimum = str(config["headscale.min_version"])
    try:
        version = client.version()
    except ClientError as exc:
        warn(f"Headscale's version is unknown: {exc}")
    have, wanted = version_tuple(version.version), version_tuple(minimum)
    if have is None:
        warn(f"Headscale reported an unreadable version {version.version!r}")
    if wanted is not None and have < wanted:
        warn(f"Headscale {version.version} is older than headscale.min_version {minimum}")
    return {"message": f"Headscale {version.version}", "version": version.version, "go": version.go}


def _match_self(nodes: tuple[HeadscaleNode, ...], node_key: str, hostname: str) -> tuple[HeadscaleNode | None, bool]:
    """This node in Headscale's list: by node key (exact), else by host name (``False``: stale)."""
    for node in nodes:
        if node_key and node.node_key == node_key:
            return node, True
    lowered = hostname.lower()
    for node in nodes:
        if lowered and lowered in (node.name.lower(), node.given_name.lower()):
            return node, False
    return None, False


@check(
    id="headscale.node.registered",
    layer=LAYER,
    title="This node is registered and online in Headscale",
    requires=["headscale.api.auth", "tailscale.backend.running"],
    remediation="log this node in to the configured Headscale: `tailscale up --login-server=<headscale.url> "
    "--force-reauth` (`headscale nodes list` shows what Headscale knows)",
)
def check_node_registered(headscale_api: HeadscaleClient | None,
                          tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    client = headscale_of(headscale_api)
    me = status_of(tailscale_localapi).self
    try:
        nodes = client.nodes()
    except ClientError as exc:
        raise _fail(exc) from None
    node, by_key = _match_self(nodes, me.public_key, me.hostname)
    assert node is not None, (
        f"{me.hostname} (node key {me.public_key[:16]}…) is not registered in Headscale at {client.url}: "
        "tailscaled is logged in to another control server, or the node was deleted")
    where = f"{me.hostname} (Headscale node {node.id}, user {node.user or 'tagged'})"
    assert node.online, (f"Headscale lists {where} as offline (last seen {ago(node.last_seen)}) while tailscaled "
                         "runs: it is connected to another control server, or its session dropped")
    if not by_key:
        warn(f"Headscale has {where} under another node key than tailscaled uses: a stale registration "
             f"(remove it with `headscale nodes delete --identifier {node.id}`) or a second login")
    mismatch = sorted(set(me.tailscale_ips) ^ set(node.ip_addresses))
    if mismatch:
        warn(f"{where}: Headscale's addresses {', '.join(node.ip_addresses)} differ from tailscaled's "
             f"{', '.join(me.tailscale_ips)}")
    return {"message": f"{where} is registered and online", "node_id": node.id, "user": node.user}


def route_check(routes: list[str]) -> Callable[..., Any]:
    """``headscale.route[<cidr>]`` per ``headscale.expected_routes`` entry."""
    if not routes:
        return _no_routes()

    @check(
        id="headscale.route",
        layer=LAYER,
        title="An expected subnet route is advertised, approved and served",
        requires="headscale.api.auth",
        remediation="advertise it on the subnet router (`tailscale set --advertise-routes=<cidr>`), approve it "
        "(`headscale nodes approve-routes --identifier <node id> --routes <all approved cidrs>`) and keep "
        "the router online",
    )
    def check_route(route: str, headscale_api: HeadscaleClient | None) -> dict[str, Any]:
        client = headscale_of(headscale_api)
        try:
            wanted = ipaddress.ip_network(route, strict=False)
        except ValueError:
            raise AssertionError(f"headscale.expected_routes: {route!r} is not a CIDR") from None
        try:
            known = client.routes()
        except ClientError as exc:
            raise _fail(exc) from None
        matching = [r for r in known if _same(r.prefix, wanted)]
        assert any(r.advertised for r in matching), (
            f"no node advertises {wanted}: on the subnet router run `tailscale set --advertise-routes={wanted}` "
            "(with the routes it already advertises)")
        enabled = [r for r in matching if r.advertised and r.enabled]
        assert enabled, _not_approved(wanted, [r for r in matching if r.advertised], known)
        serving = [r for r in enabled if r.primary]
        names = ", ".join(f"{r.node_name} (node {r.node_id})" for r in enabled)
        assert serving, f"{wanted} is approved on {names} but served by none: the router is offline"
        return {"message": f"{wanted} is advertised, approved and served by {serving[0].node_name}",
                "node": serving[0].node_name, "node_id": serving[0].node_id}

    return parametrize("route", routes)(check_route)


def _no_routes() -> Callable[..., Any]:
    """The one ``headscale.route`` check when no route is expected: it skips."""

    @check(
        id="headscale.route",
        layer=LAYER,
        title="Expected subnet routes are advertised and approved",
        requires="headscale.api.auth",
        remediation="list the routes GuildNet needs (the cluster's service and pod CIDRs) in "
        "headscale.expected_routes",
    )
    def check_no_routes() -> None:
        skip("headscale.expected_routes is empty: nothing configured")

    return check_no_routes


def _same(prefix: str, wanted: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_network(prefix, strict=False) == wanted
    except ValueError:
        return False


def _not_approved(wanted: object, advertised: list[HeadscaleRoute], known: tuple[HeadscaleRoute, ...]) -> str:
    first = advertised[0]
    if first.route_id:  # before v0.26: routes have their own ids
        fix = f"`headscale routes enable --route {first.route_id}`"
    else:
        approved = [r.prefix for r in known if r.node_id == first.node_id and r.enabled]
        fix = (f"`headscale nodes approve-routes --identifier {first.node_id} "
               f"--routes {','.join([*approved, str(wanted)])}`")
    return (f"{wanted} is advertised by {first.node_name} (node {first.node_id}) but not approved in Headscale: "
            f"approve it with {fix}")

