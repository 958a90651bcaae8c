"""The ``guildnet`` layer: the Host App and what it says about each cluster it manages.

Host-level checks (one each): the Host App answers over verified TLS (``/healthz``), its
certificate's expiry, and its API (``/api/health``). Per-cluster checks (``[cluster]``), in
``_gn_cluster``: registered, ``/api/health`` entry, ``/status``, DB health, and the opt-in
Workspace smoke test. Every per-cluster check requires ``guildnet.hostapp.api``, which requires
``guildnet.hostapp.reachable``: a Host App that is down is one root cause, not twenty.

The Host App client (``mgn_verify.clients.hostapp``, which imports httpx) is built by the
``guildnet_hostapp`` fixture, only when a guildnet check runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mgn_verify import Config, Registry, RunPlan, check, fixture, hookimpl, skip, warn
from mgn_verify._exceptions import ClientError
from mgn_verify.config import SettingsRegistry

from . import _gn_cluster, _gn_smoke
from ._clusters import cluster_targets, discovered_cluster_ids, not_found, register_per_cluster
from ._common import module_checks

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import HostAppClient

DEFAULT_URL = "https://127.0.0.1:8090"
NOT_FOUND_HINT = "set api.base_url (or MGN_API_URL) to the Host App's URL, e.g. https://127.0.0.1:8090"


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("api.discover_timeout", 2.0,
        help="seconds to wait for the Host App's cluster list when discovering clusters (no retries)")
    add("guildnet.cert_warn_days", 30, help="warn when the Host App's certificate expires within this many days")
    add("guildnet.smoke_test", False,
        help="run the Workspace smoke test: create a throwaway Workspace through the Host App, wait for "
        "Running, delete it (it mutates the cluster; off by default)")
    add("guildnet.smoke_image", "nginxinc/nginx-unprivileged:1.25",
        help="image of the smoke test's Workspace (it must serve HTTP on port 8080)")
    add("guildnet.smoke_timeout", 180.0,
        help="seconds the smoke test waits for its Workspace to be Running (at most 540)")


@hookimpl
def mgn_register_checks(registry: Registry, config: Config, selection: list[str]) -> None:
    register_per_cluster(registry, module_checks(_gn_cluster, _gn_smoke),
                         cluster_targets(config, discovered_cluster_ids(config, selection)))


@fixture
def guildnet_hostapp(config: Config) -> Iterator[HostAppClient]:
    """One Host App client per run (httpx is thread-safe), closed at the end."""
    from mgn_verify.clients.hostapp import HostAppClient

    client = HostAppClient.from_config(config)
    try:
        yield client
    finally:
        client.close()


@fixture
def guildnet_origins(config: Config, plan: RunPlan) -> dict[str, str]:
    """Where each cluster to verify came from: ``config``, ``defaults`` or ``hostapp``."""
    return {t.id: t.origin for t in cluster_targets(config, discovered_cluster_ids(config, plan.selection))}


@fixture
def guildnet_ids(config: Config) -> dict[str, str]:
    """Each cluster's id in the Host App, filled by ``guildnet.cluster.registered`` (which every
    other per-cluster check requires): a configured ``prod`` may be the Host App's UUID named
    ``prod``."""
    return {}


def _ca_text(config: Config) -> str:
    ca = config["api.ca_bundle"]
    return f"the CA in {ca}" if ca else "the system trust store"


@check(
    id="guildnet.hostapp.reachable",
    gates=["install", "cluster.bootstrap", "cluster.apply", "cluster.delete", "workspace.create",
           "workspace.delete", "federation.deploy"], waivable=False,
    title="The Host App answers over TLS verified with the configured CA",
    remediation="start the Host App (`hostapp serve`, or its systemd unit) and set api.base_url to its URL; "
    "GuildNet signs its own certificate: set api.ca_bundle to the CA that signed it (certs/ca.crt)",
    timeout=30,
)
def check_hostapp_reachable(config: Config, plan: Any, guildnet_hostapp: HostAppClient) -> dict[str, object]:
    from mgn_verify.clients.hostapp import TlsVerificationError, Unreachable

    url = guildnet_hostapp.base_url
    started = time.monotonic()
    try:
        # /healthz checks nothing and answers at once: a short timeout (3 tries fit the deadline).
        body = guildnet_hostapp.healthz(timeout=min(float(config["api.timeout"]), 5.0))
    except TlsVerificationError as exc:
        hint = ("; renew it: guildnet.hostapp.certificate shows its dates" if exc.expired
                else f" (verified with {_ca_text(config)})" if "api.ca_bundle" in str(exc)  # the client says the fix
                else f" (verified with {_ca_text(config)}; set api.ca_bundle to the CA that signed it)")
        raise AssertionError(f"{exc}{hint}") from None
    except Unreachable as exc:
        if exc.reason in ("refused", "dns") and config.source("api.base_url") == "default":
            not_found(plan, "guildnet", f"nothing answers at {url}", hint=NOT_FOUND_HINT)
        raise AssertionError(str(exc)) from None
    except ClientError as exc:
        raise AssertionError(f"{url}/healthz: {exc}") from None
    elapsed = (time.monotonic() - started) * 1000
    assert body.strip() == "ok", f"{url}/healthz answered {body[:60]!r}, not 'ok': is this a GuildNet Host App?"
    return {"message": f"{url}/healthz answered ok in {elapsed:.0f} ms, TLS verified with {_ca_text(config)}",
            "url": url, "elapsed_ms": round(elapsed, 1)}


@check(
    id="guildnet.hostapp.certificate",
    title="The Host App's certificate is valid and not about to expire",
    remediation="renew the Host App certificate (scripts/generate-server-cert.sh, or your CA) into "
    "./certs/server.crt + server.key and restart the Host App; guildnet.cert_warn_days sets the margin",
    timeout=20,
)
def check_hostapp_certificate(config: Config) -> dict[str, object]:
    from ._tls import TlsFailure, verify_server

    parts = urlsplit(str(config["api.base_url"]))
    if parts.scheme != "https":
        skip(f"api.base_url is {parts.scheme}://, not https: no certificate to inspect")
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    try:
        timeout = min(float(config["api.timeout"]), 10.0)
        info, version = verify_server(host, port, host, config["api.ca_bundle"], timeout)
    except TlsFailure as exc:
        if exc.kind == "connect":
            skip(f"no TLS answer at {host}:{port} ({exc}): guildnet.hostapp.reachable says why")
        if exc.kind == "unknown-ca":  # not a certificate to renew: a trust anchor to configure
            raise AssertionError(f"Host App certificate at {host}:{port}: {exc}; fix: set api.ca_bundle "
                                 "(MGN_API_CA_BUNDLE) to the CA that signs it (GuildNet's own: certs/ca.crt)"
                                 ) from None
        raise AssertionError(f"Host App certificate at {host}:{port}: {exc}") from None
    days, margin = info.days_left(), config["guildnet.cert_warn_days"]
    if days < margin:
        warn(f"the Host App certificate expires in {days:.1f} days ({info.not_after:%Y-%m-%d}), "
             f"within the {margin}-day margin")
    return {"message": f"{version}, issued by {info.issuer}, valid until {info.not_after:%Y-%m-%d} "
            f"({days:.0f} days)", **info.to_dict()}


@check(
    id="guildnet.hostapp.api",
    gates=["install", "cluster.bootstrap", "cluster.apply", "cluster.delete", "workspace.create",
           "workspace.delete", "federation.deploy"],
    title="The Host App's API answers /api/health",
    requires="guildnet.hostapp.reachable",
    remediation="read the Host App's log (journalctl -u hostapp, or its terminal) for the failing request; "
    "restart it; a Host App without clusters: `mgn cluster bootstrap --kubeconfig PATH`",
    timeout=40,
)
def check_hostapp_api(guildnet_hostapp: HostAppClient, config: Config) -> dict[str, object]:
    try:
        # The Host App may take ~12 s per unreachable cluster here; stay inside the check's 40 s.
        report = guildnet_hostapp.health(timeout=min(float(config["api.timeout"]), 12.0))
    except ClientError as exc:  # an error answer, a timeout, a dropped connection: a failure, with why
        raise AssertionError(str(exc)) from None
    clusters = {c.id: c.status for c in report.clusters}
    shown = ", ".join(f"{cid} {status}" for cid, status in clusters.items()) or "none"
    details: dict[str, object] = {"clusters": clusters, "headscale": {h.id: h.status for h in report.headscale}}
    unknown = [h.id for h in report.headscale if not h.ok]
    if unknown:
        warn(f"Headscale records whose endpoint does not answer a TCP connect: {', '.join(unknown)} "
             f"(clusters: {shown})")
    if not clusters:
        warn("the Host App manages no cluster: attach one with `mgn cluster bootstrap --kubeconfig PATH`")
    return {"message": f"/api/health lists {len(clusters)} cluster(s): {shown}; "
            f"{len(report.headscale)} Headscale record(s)", **details}
