"""The server itself: reachable over TCP, the handshake and SCRAM login, the admin password, the
server version and the query latency.

``rethinkdb.reachable`` is the layer's root: nothing listening where RethinkDB was configured or
discovered is one ``fail`` (a ``skip`` in a run of ``all`` when nothing was configured and nothing
is at the default location). ``rethinkdb.auth`` turns a rejected login into one ``fail``
("authentication failed for user admin: wrong password"); every query check requires it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from mgn_verify import Config, check, warn
from mgn_verify._exceptions import AuthError, ClientError

from ._clusters import not_found
from ._rdb_common import AUTH, LAYER, REACHABLE, RethinkPool

__all__ = ["parse_version"]

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
NOT_FOUND_HINT = "set rethinkdb.host (or rethinkdb.service/rethinkdb.namespace of the cluster's Service)"


def parse_version(text: object) -> tuple[int, ...] | None:
    """``(2, 4, 4)`` from ``rethinkdb 2.4.4~0bookworm (x86_64-linux-gnu) (GCC 12.2.0)`` or ``2.4``."""
    match = _VERSION.search(str(text or ""))
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _within(version: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]) -> bool:
    """``low <= version``, and ``version`` no newer than ``high`` in the parts ``high`` gives
    (``2.4`` admits every 2.4.x)."""
    return version >= low and version[: len(high)] <= high


@check(
    id="rethinkdb.reachable",
    gates=["cluster.bootstrap"],
    title="RethinkDB accepts TCP connections",
    severity="critical",
    remediation="start RethinkDB (kubectl -n default rollout status statefulset/rethinkdb) and make its "
    "driver port reachable; point rethinkdb.host/rethinkdb.port at it, or rethinkdb.service/"
    "rethinkdb.namespace at the Service that exposes it",
)
def check_reachable(cluster: str, rethinkdb_clusters: RethinkPool, plan: Any) -> dict[str, Any]:
    """The driver port (configured, or found through the cluster's Service) accepts a TCP connection."""
    from mgn_verify.clients.rethinkdb import tcp_probe

    address = rethinkdb_clusters.address(cluster)
    try:
        took = tcp_probe(address, rethinkdb_clusters.timeout)
    except ClientError as exc:
        if not address.configured:
            not_found(plan, LAYER, f"nothing listens at {address} ({address.note})", hint=NOT_FOUND_HINT)
        raise AssertionError(f"{exc} (address from {address.source})") from None
    return {"message": f"{address} accepts connections ({took * 1000:.0f} ms; address from {address.source})",
            "address": str(address), "source": address.source}


@check(
    id="rethinkdb.auth",
    title="Handshake and login succeed",
    severity="critical",
    requires=REACHABLE,
    remediation="set rethinkdb.user/rethinkdb.password to the account's credentials (the admin password is "
    "set with r.db('rethinkdb').table('users').get('admin').update({'password': ...}))",
)
def check_auth(cluster: str, rethinkdb_clusters: RethinkPool) -> dict[str, Any]:
    """The V1_0 handshake and SCRAM-SHA-256 authentication as ``rethinkdb.user`` succeed."""
    try:
        client = rethinkdb_clusters.client(cluster)
        info = client.server_info()
    except ClientError as exc:
        raise AssertionError(str(exc)) from None
    name = info.get("name") or info.get("id")
    return {"message": f"logged in as {client.user} (SCRAM-SHA-256) to server {name} at {client.address}",
            "user": client.user, "server": name, "server_id": info.get("id"), "proxy": bool(info.get("proxy"))}


@check(
    id="rethinkdb.admin.password",
    title="The admin account has a password",
    severity="critical",
    requires=REACHABLE,
    remediation="set one: r.db('rethinkdb').table('users').get('admin').update({'password': '<secret>'}) "
    "(or start rethinkdb with --initial-password), then set rethinkdb.password",
)
def check_admin_password(cluster: str, rethinkdb_clusters: RethinkPool) -> dict[str, Any]:
    """A login as ``admin`` with an empty password is refused."""
    from mgn_verify.clients.rethinkdb import connect

    address = rethinkdb_clusters.address(cluster)
    try:
        client = connect(address, "admin", "", rethinkdb_clusters.timeout)
    except AuthError as exc:
        return {"message": f"a login as admin without a password is refused ({str(exc).split(': ')[-1]})"}
    except ClientError as exc:
        raise RuntimeError(f"could not try a password-less login: {exc}") from None
    client.close()
    raise AssertionError(f"admin has no password: a login as admin with an empty password to {address} succeeded")


@check(
    id="rethinkdb.version",
    title="Server version is supported",
    severity="critical",
    requires=AUTH,
    remediation="run a supported RethinkDB (GuildNet deploys rethinkdb:2.4), or widen "
    "rethinkdb.min_version/rethinkdb.max_version",
)
def check_version(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """Every connected server runs a version between ``rethinkdb.min_version`` and ``max_version``."""
    low, high = parse_version(config["rethinkdb.min_version"]), parse_version(config["rethinkdb.max_version"])
    if low is None or high is None:
        raise ValueError("rethinkdb.min_version and rethinkdb.max_version must look like 2.4 or 2.4.4")
    rows = rethinkdb_clusters.client(cluster).table("server_status")
    versions = {str(row.get("name")): str((row.get("process") or {}).get("version") or "") for row in rows}
    shown = {name: ".".join(map(str, parse_version(text) or ())) or text for name, text in versions.items()}
    bad = [f"{name} runs {shown[name] or 'an unknown version'}" for name, text in sorted(versions.items())
           if (v := parse_version(text)) is None or not _within(v, low, high)]
    supported = f"{config['rethinkdb.min_version']} to {config['rethinkdb.max_version']}.x"
    assert not bad, f"{'; '.join(bad)} (supported: {supported})"
    listing = ", ".join(f"{name} {shown[name]}" for name in sorted(shown))
    return {"message": f"{listing} (supported: {supported})", "versions": versions}


@check(
    id="rethinkdb.latency",
    title="Queries answer promptly",
    severity="warning",
    requires=AUTH,
    remediation="look at the server's load and disk (r.db('rethinkdb').table('stats')), its cache size "
    "(--cache-size), and the network path; raise rethinkdb.latency_warn if this latency is expected",
)
def check_latency(cluster: str, rethinkdb_clusters: RethinkPool, config: Config) -> dict[str, Any]:
    """A trivial query answers within ``rethinkdb.latency_warn`` (the best of up to
    ``rethinkdb.latency_samples`` tries: one slow answer is not a slow server)."""
    client = rethinkdb_clusters.client(cluster)
    limit, samples = float(config["rethinkdb.latency_warn"]), []
    for _ in range(max(1, int(config["rethinkdb.latency_samples"]))):
        started = time.perf_counter()
        client.run(client.r.expr(1))
        samples.append(time.perf_counter() - started)
        if samples[-1] <= limit:
            break
    best = min(samples)
    details = {"samples_ms": [round(s * 1000, 1) for s in samples], "limit_ms": round(limit * 1000)}
    if best > limit:
        warn(f"a trivial query took {best * 1000:.0f} ms at best of {len(samples)} "
             f"(rethinkdb.latency_warn: {limit * 1000:.0f} ms)")
    return {"message": f"a trivial query takes {best * 1000:.1f} ms", **details}
