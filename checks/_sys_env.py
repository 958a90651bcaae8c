"""System checks of the host's environment: clock, proxy variables, local TLS material.

Registered by ``system.mgn_register_checks`` next to the ``_sys_node`` checks.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit

from mgn_verify import Config, check, skip, warn

from ._cidr import TAILNET_V4, TAILNET_V6, no_proxy_covers
from ._common import linux_only
from ._dns import resolve
from ._host import Host, adjtimex_state
from ._net import parse_endpoint
from ._sntp import SntpError, query
from ._tls import describe, load_pem_certs, private_key_matches

__all__: list[str] = []

_OS = ["system.os.supported"]
_TIME_DAEMONS = ("chronyd", "ntpd", "systemd-timesyncd", "openntpd", "timesyncd")
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _time_daemons(host: Host) -> list[str]:
    return sorted({comm for _, comm, _ in host.processes() if comm in _TIME_DAEMONS})


@check(
    id="system.time.sync",
    gates=["install"],
    title="Clock is synchronised",
    severity="warning",
    requires=_OS,
    remediation="run an NTP client: `apt install chrony && systemctl enable --now chrony` "
    "(or `timedatectl set-ntp true`); TLS and etcd break when clocks drift",
)
def check_time_sync(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    daemons = _time_daemons(system_host)
    running = f"; {', '.join(daemons)} running" if daemons else ""
    if system_host.path("/run/systemd/timesync/synchronized").exists():
        return {"message": "systemd-timesyncd reports the clock synchronised" + running}
    state = adjtimex_state()
    if state is None:
        if daemons:
            return {"message": f"{', '.join(daemons)} running (kernel time state unreadable)"}
        skip("cannot read the kernel time state (adjtimex) and no NTP daemon is running")
    synced, max_error = state
    if synced:
        return {"message": f"kernel clock synchronised (max error {max_error * 1000:.0f} ms){running}"}
    if daemons:
        raise AssertionError(
            f"{', '.join(daemons)} running but the kernel clock is not synchronised yet (STA_UNSYNC)"
        )
    raise AssertionError(
        "kernel clock not synchronised (adjtimex: STA_UNSYNC) and no NTP daemon "
        f"({', '.join(_TIME_DAEMONS[:3])}) is running"
    )


@check(
    id="system.time.skew",
    gates=["install"],
    title="Clock skew against the time servers is small",
    requires=_OS,
    remediation="synchronise the clock (`chronyc makestep`, or `timedatectl set-ntp true`) "
    "and keep an NTP client running",
)
def check_time_skew(config: Config) -> dict[str, object]:
    servers = config["system.time_servers"] or config.get("network.ntp_servers") or []
    if not servers:
        skip("no time servers configured (system.time_servers or network.ntp_servers)")
    timeout, limit = config["system.timeout"], config["system.max_clock_skew_s"]
    offsets: dict[str, float] = {}
    errors = []
    for text in servers:
        endpoint = parse_endpoint(text, default_port=123)
        answer = resolve(endpoint.host, [], timeout)
        if not answer.ok:
            errors.append(f"{text}: {answer.error}")
            continue
        try:
            offsets[text] = round(query(answer.addresses[0], endpoint.port, timeout).offset_s, 3)
        except SntpError as exc:
            errors.append(str(exc))
    if not offsets:
        skip("no time server answered, skew unknown: " + "; ".join(errors))
    worst = max(offsets, key=lambda k: abs(offsets[k]))
    assert abs(offsets[worst]) <= limit, (
        f"clock is off by {offsets[worst]:+.3f} s against {worst} (limit ±{limit:g} s)"
    )
    return {
        "message": f"largest offset {offsets[worst]:+.3f} s ({worst}), limit ±{limit:g} s",
        "offsets_s": offsets,
        "unreachable": errors,
    }


def _no_proxy_targets(config: Config) -> list[str]:
    targets = []
    api = urlsplit(str(config.get("api.base_url") or "")).hostname
    if api:
        targets.append(api)
    for key, default in (("network.pod_cidr", "10.244.0.0/16"), ("network.service_cidr", "10.96.0.0/12")):
        value = config.get(key, default)
        if value:
            targets.append(str(value))
    return [*targets, TAILNET_V4, TAILNET_V6, *config["system.proxy_bypass"]]


@check(
    id="system.proxy",
    gates=["install"],
    title="NO_PROXY covers cluster and tailnet addresses",
    severity="warning",
    remediation="export NO_PROXY (and no_proxy) with the missing entries, e.g. "
    "`NO_PROXY=localhost,127.0.0.1,10.244.0.0/16,10.96.0.0/12,100.64.0.0/10,"
    "fd7a:115c:a1e0::/48`, also in the containerd/kubelet environment",
)
def check_proxy(config: Config) -> dict[str, object]:
    env = os.environ
    proxies = {name: env[name] for name in _PROXY_VARS if env.get(name)}
    if not proxies:
        skip("no proxy configured (HTTP(S)_PROXY unset)")
    raw = ",".join(filter(None, (env.get("NO_PROXY"), env.get("no_proxy"))))
    entries = [e for e in raw.split(",") if e.strip()]
    targets = _no_proxy_targets(config)
    missing = [t for t in targets if not no_proxy_covers(entries, t)]
    proxy_names = ", ".join(sorted(proxies))
    assert not missing, (
        f"{proxy_names} set but NO_PROXY does not cover {', '.join(missing)}; use "
        f"NO_PROXY={','.join([*entries, *missing])}"
    )
    return {"message": f"{proxy_names} set; NO_PROXY covers {', '.join(targets)}", "no_proxy": entries}


def _key_for(cert_path: Path) -> Path | None:
    stem = cert_path.stem
    for name in (
        f"{stem}.key",
        f"{stem}-key.pem",
        f"{stem}_key.pem",
        f"{stem.removesuffix('-cert')}.key",
        f"{stem.removesuffix('.crt')}-key.pem",
    ):
        candidate = cert_path.with_name(name)
        if candidate != cert_path and candidate.is_file():
            return candidate
    return None


@check(
    id="system.certs",
    gates=["install"],
    title="Local GuildNet certificates are valid",
    requires=_OS,
    remediation="regenerate GuildNet's certificates (`scripts/generate-certs.sh`, or delete "
    "~/.guildnet/certs and re-run `mgn install`)",
)
def check_certs(config: Config) -> dict[str, object]:
    directory = Path(config["system.certs_dir"]).expanduser()
    if not directory.is_dir():
        skip(f"no GuildNet certificates at {directory} (nothing to check)")
    now = dt.datetime.now(dt.UTC)
    warn_days = config["system.cert_warn_days"]
    problems, soon, seen = [], [], {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".crt", ".pem", ".cert") and p.is_file())
    for path in files:
        try:
            certs = load_pem_certs(path)
        except (ValueError, PermissionError) as exc:
            problems.append(f"{path.name}: unreadable ({exc})")
            continue
        if not certs:
            continue  # a key or something else in PEM form
        info = describe(certs[0])
        seen[path.name] = {"not_after": info.not_after.isoformat(), "subject": info.subject}
        if info.not_after <= now:
            problems.append(f"{path.name}: expired on {info.not_after:%Y-%m-%d}")
        elif info.not_before > now:
            problems.append(f"{path.name}: not valid before {info.not_before:%Y-%m-%d %H:%M} UTC")
        elif info.days_left(now) < warn_days:
            soon.append(f"{path.name}: expires in {info.days_left(now):.0f} days ({info.not_after:%Y-%m-%d})")
        key = _key_for(path)
        if key is not None:
            try:
                if not private_key_matches(certs[0], key):
                    problems.append(f"{path.name}: {key.name} is not its private key")
            except (ValueError, TypeError, PermissionError) as exc:
                problems.append(f"{key.name}: cannot load the key ({exc})")
    if not seen and not problems:
        skip(f"no certificates in {directory}")
    assert not problems, "; ".join(problems)
    if soon:
        warn(f"within {warn_days} days: " + "; ".join(soon))
    return {"message": f"{len(seen)} certificates valid for > {warn_days} days ({directory})", "certs": seen}
