"""The ``tailscale`` layer: is this host on the GuildNet tailnet, and does Headscale agree?

tailscaled is asked through its LocalAPI (``GET /localapi/v0/status`` over ``tailscale.socket``,
read once per run); Headscale through its HTTP API (``headscale.url`` + ``headscale.api_key``).
Both are host-level: nothing here is per cluster.

Dependencies make one broken component one root cause::

    tailscale.daemon ─┬─ tailscale.key.expiry ── tailscale.backend.running ─┬─ tailscale.self.online ── tailscale.peer.*
                      └─ tailscale.version                                   └─ tailscale.health
    headscale.reachable ─┬─ headscale.api.auth ─┬─ headscale.node.registered (also needs tailscale.backend.running)
                         └─ headscale.version   └─ headscale.route[...]

A missing socket at the default place, or an empty ``headscale.url``, is ``skip`` ("not
configured") in a run of ``all``, and a failure when ``mgn verify tailscale`` is asked for.
The Headscale checks carry ``layer="tailscale"``: one layer, two components.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mgn_verify import ClientError, Config, NotConfiguredError, Registry, check, fixture, hookimpl, warn
from mgn_verify.config import SettingsRegistry

from . import _ts_headscale, _ts_peers
from ._clusters import not_found
from ._common import module_checks
from ._ts_common import LAYER, ago, login_server, register_key, status_of

if TYPE_CHECKING:
    from mgn_verify.clients.headscale import HeadscaleClient
    from mgn_verify.clients.tailscale import LocalAPIClient, TailscaleStatus



@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("tailscale.timeout", 5.0, help="seconds per LocalAPI request to tailscaled")
    add("tailscale.key_expiry_warn_days", 14, help="warn when this node's key expires within this many days")
    add("tailscale.expected_peers", [], help="peers that must be online, each a host name, MagicDNS name or "
        "Tailscale IP (e.g. the Host App and the cluster's nodes); empty: peer checks skipped")
    add("tailscale.min_version", "1.80.0", help="oldest tailscaled without a warning (Headscale v0.29 supports "
        "the latest 10 minor releases: 1.80 and newer)")
    add("headscale.ca_bundle", None, kind="str", help="CA bundle (PEM) that signs Headscale's certificate, "
        "added to the system roots; verification is always on")
    add("headscale.timeout", 5.0, help="seconds per Headscale API request")
    add("headscale.expected_routes", [], help="subnet routes (CIDRs) some node must advertise and Headscale "
        "must approve, e.g. the cluster's service and pod ranges; empty: route checks skipped")
    add("headscale.min_version", "v0.26.0", help="oldest Headscale without a warning (v0.26 moved routes "
        "onto nodes and is the oldest API shape fully read here)")


@hookimpl
def mgn_register_checks(registry: Registry, config: Config) -> None:
    for func in module_checks(_ts_headscale):
        registry.add_check(func)
    registry.add_check(_ts_headscale.route_check(list(dict.fromkeys(config["headscale.expected_routes"]))))
    for func in _ts_peers.peer_checks(list(dict.fromkeys(config["tailscale.expected_peers"]))):
        registry.add_check(func)


# -- connections ------------------------------------------------------------------------------


@fixture
def tailscale_localapi(config: Config) -> Iterator[LocalAPIClient]:
    """One LocalAPI client per run (its status is read once and shared by every check)."""
    from mgn_verify.clients.tailscale import LocalAPIClient

    client = LocalAPIClient(str(config["tailscale.socket"]), timeout=float(config["tailscale.timeout"]))
    try:
        yield client
    finally:
        client.close()


@fixture
def headscale_api(config: Config) -> Iterator[HeadscaleClient | None]:
    """One Headscale client per run; ``None`` when ``headscale.url`` is empty."""
    from mgn_verify.clients.headscale import HeadscaleClient

    if not config["headscale.url"]:
        yield None
        return
    client = HeadscaleClient(str(config["headscale.url"]), str(config["headscale.api_key"] or ""),
                             ca_bundle=config["headscale.ca_bundle"], timeout=float(config["headscale.timeout"]))
    try:
        yield client
    finally:
        client.close()


# -- tailscaled ------------------------------------------------------------------------------


@check(
    id="tailscale.daemon",
    title="tailscaled answers on its LocalAPI socket",
    remediation="start the daemon: `sudo systemctl enable --now tailscaled`, or point tailscale.socket at "
    "the socket it listens on (`tailscaled --socket=...`)",
)
def check_daemon(config: Config, plan: Any, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    path = str(config["tailscale.socket"])
    try:
        status = tailscale_localapi.status()
    except NotConfiguredError as exc:
        if config.source("tailscale.socket") == "default":  # not asked for: maybe just not installed
            not_found(plan, LAYER, str(exc), hint="set tailscale.socket (or install and start tailscaled)")
        raise AssertionError(f"{exc} (tailscale.socket={path})") from None
    except ClientError as exc:
        raise AssertionError(str(exc)) from None
    return {"message": f"tailscaled {status.version} answers on {path} (BackendState {status.backend_state})",
            "socket": path, "version": status.version, "backend_state": status.backend_state}


@check(
    id="tailscale.key.expiry",
    title="This node's key is not expired or about to expire",
    requires="tailscale.daemon",
    remediation="log in again before the key expires: `tailscale up --login-server=<headscale.url> --force-reauth`",
)
def check_key_expiry(config: Config, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    status = status_of(tailscale_localapi)
    me = status.self
    if not status.has_netmap:
        return {"message": "no network map (not logged in): no node key to expire yet"}
    if me.key_expiry is None:
        return {"message": f"key expiry is disabled for {me.hostname}"}
    now = datetime.now(UTC)
    details = {"node": me.hostname, "key_expiry": me.key_expiry.isoformat()}
    relogin = f"`tailscale up --login-server={login_server(config, status)} --force-reauth`"
    assert not me.expired and me.key_expiry > now, (
        f"the node key of {me.hostname} expired {ago(me.key_expiry, now)}: it is logged out of the tailnet; "
        f"log in again with {relogin}"
    )
    margin = timedelta(days=float(config["tailscale.key_expiry_warn_days"]))
    if me.key_expiry - now < margin:
        warn(f"the node key of {me.hostname} expires {ago(me.key_expiry, now)}, within "
             f"tailscale.key_expiry_warn_days={config['tailscale.key_expiry_warn_days']}: re-authenticate "
             f"before then with {relogin}")
    return {"message": f"the node key of {me.hostname} expires {ago(me.key_expiry, now)}", **details}


def _not_running(config: Config, status: TailscaleStatus) -> str:
    """The failure message for a BackendState other than Running, with the exact fix."""
    state, host = status.backend_state, status.self.hostname
    up = f"`tailscale up --login-server={login_server(config, status)}`"
    if state == "NeedsLogin":
        key = register_key(status.auth_url)
        if key:
            return (f"tailscaled on {host} is logged out (BackendState NeedsLogin) with a registration pending "
                    f"on {login_server(config, status)}: approve it with `headscale nodes register --user <user> "
                    f"--key {key}`, or log in with {up}")
        return f"tailscaled on {host} is logged out (BackendState NeedsLogin): log in with {up}"
    if state == "NeedsMachineAuth":
        return (f"{host} is registered but waits for the tailnet admin's approval (BackendState NeedsMachineAuth): "
                f"approve it on the control server (Headscale: `headscale nodes register --user <user> --key "
                f"<registration key>`; Tailscale: admin console, Machines, Approve)")
    if state == "Stopped":
        return f"Tailscale is stopped on {host} (BackendState Stopped, after `tailscale down`): run `tailscale up`"
    if state in ("Starting", "NoState"):
        return (f"tailscaled on {host} is still starting (BackendState {state}): no connection to control or "
                f"peers yet; wait, then check `tailscale status` (or restart: `sudo systemctl restart tailscaled`)")
    if state == "InUseOtherUser":
        return (f"tailscaled on {host} is in use by another local user (BackendState InUseOtherUser): "
                f"run `tailscale up` as that user, or `tailscale switch` to this profile")
    return f"tailscaled on {host} is in an unexpected state {state!r}: run {up}"


@check(
    id="tailscale.backend.running",
    title="tailscaled is logged in and running (BackendState Running)",
    requires="tailscale.key.expiry",
    remediation="NeedsLogin: `tailscale up --login-server=<headscale.url>`; NeedsMachineAuth: approve the node "
    "on the control server (`headscale nodes register --user <user> --key <key>`); Stopped: `tailscale up`",
)
def check_backend_running(config: Config, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    status = status_of(tailscale_localapi)
    assert status.backend_state == "Running", _not_running(config, status)
    return {"message": f"{status.self.hostname} is running in tailnet {status.tailnet or '(unnamed)'}",
            "tailnet": status.tailnet, "magic_dns_suffix": status.magic_dns_suffix}


@check(
    id="tailscale.self.online",
    title="This node is online with a Tailscale (100.64.0.0/10) address",
    requires="tailscale.backend.running",
    remediation="check that tailscaled reaches the control server (`tailscale status`, `tailscale netcheck`); "
    "a node without a 100.x address needs `tailscale up --login-server=<headscale.url> --force-reauth`",
)
def check_self_online(tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    from mgn_verify.clients.tailscale import is_cgnat

    status = status_of(tailscale_localapi)
    me = status.self
    assert me.in_network_map, f"{me.hostname} is not in its own network map: tailscaled has no map from control"
    assert me.online, (f"{me.hostname} is not connected to the control server (Self.Online false): peers may "
                       "become unreachable; see `tailscale status` and `tailscale netcheck`")
    v4 = [ip for ip in status.tailscale_ips if is_cgnat(ip)]
    assert v4, (f"{me.hostname} has no Tailscale IPv4 address in 100.64.0.0/10 "
                f"(TailscaleIPs: {', '.join(status.tailscale_ips) or 'none'})")
    return {"message": f"{me.hostname} is online as {', '.join(status.tailscale_ips)}",
            "addresses": list(status.tailscale_ips), "dns_name": me.dns_name.rstrip(".")}


#: Fixes for the daemon's health messages we know (matched by a fragment of the text).
_HEALTH_FIXES = (
    ("--accept-routes is false", "`tailscale set --accept-routes`"),
    ("IP forwarding is disabled", "`sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1`"),
    ("listen for incoming UDP", "let tailscaled bind UDP 41641 (firewall, another process on the port)"),
    ("coordination server", "check the route to the login server (`tailscale netcheck`, proxy, firewall)"),
    ("relay server", "allow outbound HTTPS and STUN (3478/udp) to the DERP servers"),
    ("update from version", "`tailscale update`"),
)


@check(
    id="tailscale.health",
    title="tailscaled reports no health warnings",
    requires="tailscale.backend.running",
    severity="warning",
    remediation="act on each warning tailscaled gives (`tailscale status` prints them too)",
)
def check_health(tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    status = status_of(tailscale_localapi)
    if not status.health:
        return {"message": "no health warnings"}
    items = []
    for text in status.health:
        fix = next((f for fragment, f in _HEALTH_FIXES if fragment in text), "")
        items.append(f"{text} (fix: {fix})" if fix else text)
    warn(f"tailscaled reports {len(items)} health warning{'s' if len(items) > 1 else ''}: " + "; ".join(items))


@check(
    id="tailscale.version",
    title="tailscaled is a version Headscale supports",
    requires="tailscale.daemon",
    severity="warning",
    remediation="upgrade Tailscale (`tailscale update`, or your package manager) to tailscale.min_version or newer",
)
def check_version(config: Config, tailscale_localapi: LocalAPIClient) -> dict[str, Any]:
    from mgn_verify.clients.tailscale import version_tuple

    status = status_of(tailscale_localapi)
    have, minimum = version_tuple(status.version), str(config["tailscale.min_version"])
    details = {"version": status.version, "capability": status.cap_version, "min_version": minimum}
    if have is None:
        warn(f"tailscaled did not report a readable version ({status.version!r})")
    wanted = version_tuple(minimum)
    if wanted is not None and have < wanted:
        warn(f"tailscaled {status.version} is older than tailscale.min_version {minimum}: Headscale may refuse "
             f"or mishandle it")
    cap = f" (capability {status.cap_version})" if status.cap_version else ""
    return {"message": f"tailscaled {status.version}{cap}", **details}
