"""System checks for the host's firewall, services, OS packages and disk sync latency.

Registered by ``system.mgn_register_checks`` next to the ``_sys_node`` checks; the file and
process facts they use are read by ``_sys_facts`` (below ``system.root``, no shelling out).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mgn_verify import Config, check, skip, warn

from ._common import KUBEADM_PORTS, existing, linux_only, node_requirement, system_role
from ._host import Host
from ._sys_facts import PortSpec, dpkg_installed, firewalld, parse_port, running_processes, ufw, unit_state

__all__ = ["DEFAULT_SERVICES"]

_OS = ["system.os.supported"]
FSYNC_BLOCK = 2300  # bytes: the size of a typical etcd WAL entry (etcd's fio recipe uses --bs=2300)

DEFAULT_SERVICES: list[dict[str, Any]] = [
    {"name": "kubelet", "unit": "kubelet.service", "roles": ["node"]},
    {"name": "container runtime", "process": ["containerd", "crio", "cri-dockerd"], "roles": ["node"]},
    {
        "name": "tailscaled",
        "process": "tailscaled",
        "roles": ["operator", "node"],
        "when": ["/var/lib/tailscale/", "/usr/sbin/tailscaled", "/usr/bin/tailscaled"],
    },
]


# -- firewall -------------------------------------------------------------------------------


def _needed_ports(config: Config, role: str) -> tuple[list[PortSpec], list[PortSpec]]:
    """(ports to check for this role, node-only ports left out on the operator host)."""
    ports = [parse_port(p) for p in config["system.ports"]]
    cni = [parse_port(p) for p in config["system.cni_ports"]]
    node_only = [p for p in ports if p.proto == "tcp" and p.port in KUBEADM_PORTS] + cni
    if role == "node":
        return list(dict.fromkeys([*ports, *cni])), []
    return [p for p in ports if p not in node_only], node_only


def _allow_command(name: str, ports: list[PortSpec]) -> str:
    if name == "ufw":
        return " && ".join(f"ufw allow {p}" for p in ports)
    adds = " ".join(f"--add-port={p}" for p in ports)
    return f"firewall-cmd --permanent {adds} && firewall-cmd --reload"


@check(
    id="system.firewall",
    gates=["install"],
    title="Host firewall lets GuildNet's ports in",
    severity="warning",
    requires=_OS,
    remediation="allow the listed ports (`ufw allow 6443/tcp`, or `firewall-cmd --permanent "
    "--add-port=6443/tcp && firewall-cmd --reload`; the message gives the exact command), or turn "
    "the firewall off on cluster hosts (`ufw disable`, `systemctl disable --now firewalld`)",
)
def check_firewall(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    role = system_role(config)
    ports, node_only = _needed_ports(config, role)
    running = "firewalld" in running_processes(["firewalld"], system_host)
    active = [fw for fw in (ufw(system_host), firewalld(system_host, running)) if fw is not None]
    details: dict[str, object] = {"role": role, "ports": [str(p) for p in ports]}
    if node_only:
        details["node_only_ports"] = [str(p) for p in node_only]
    if not active:
        return {"message": "no host firewall active (ufw not enabled, firewalld not running)", **details}
    details["firewalls"] = {fw.name: [fw.evidence, *fw.notes] for fw in active}
    findings = []
    for fw in active:
        blocked = [p for p in ports if not fw.allows(p)]
        if blocked:
            findings.append(
                f"{fw.name} is active ({fw.evidence}; {'; '.join(fw.notes)}) and does not allow "
                f"{', '.join(map(str, blocked))}: `{_allow_command(fw.name, blocked)}`"
            )
    names = " and ".join(fw.name for fw in active)
    if findings:
        warn("; ".join(findings) + (f" (system.role={role})" if role != "node" else ""))
    if not ports:
        return {"message": f"{names} active; no ports to let in for role {role}", **details}
    return {"message": f"{names} active and allowing {', '.join(map(str, ports))}", **details}


# -- services -------------------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    """A name or a list of names (any of them will do) as a list."""
    if value in (None, ""):
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def _service_entries(config: Config) -> list[dict[str, Any]]:
    entries = []
    for raw in config["system.services"]:
        if not isinstance(raw, dict) or not raw.get("name"):
            raise ValueError(f"system.services: each entry needs a name, got {raw!r}")
        unknown = set(raw) - {"name", "process", "unit", "roles", "when"}
        if unknown:
            raise ValueError(f"system.services[{raw['name']}]: unknown keys {', '.join(sorted(unknown))}")
        entries.append(raw)
    return entries


def _service_problem(host: Host, entry: dict[str, Any], running: dict[str, int]) -> tuple[str, str]:
    """("ok" | "problem" | "undecided", text) for one service entry."""
    name, units, procs = entry["name"], _names(entry.get("unit")), _names(entry.get("process"))
    said, undecided = [], []
    if units:
        states = [unit_state(host, u) for u in units]
        enabled = [s for s in states if s.state == "enabled"]
        if enabled:
            said.append(f"enabled ({enabled[0].evidence})")
        elif all(s.state == "no-systemd" for s in states):
            undecided.append(f"cannot tell whether {'/'.join(units)} is enabled: {states[0].evidence}")
        else:
            shown = "; ".join(f"{u} {s.state} ({s.evidence})" for u, s in zip(units, states, strict=True))
            return "problem", f"{name}: not enabled: {shown}; `systemctl enable --now {units[0]}`"
    if procs:
        found = [f"{p} (pid {running[p]})" for p in procs if p in running]
        if not found:
            return "problem", f"{name}: no {' / '.join(procs)} process running"
        said.append("running: " + ", ".join(found))
    if undecided and not said:
        return "undecided", f"{name}: " + "; ".join(undecided)
    return "ok", f"{name} " + ", ".join(said + undecided)


@check(
    id="system.services",
    gates=["install"],
    title="Services GuildNet relies on are enabled and running",
    requires=_OS,
    remediation="`systemctl enable --now kubelet` (kubeadm's Service-Kubelet), start the container "
    "runtime (`systemctl enable --now containerd`) and tailscaled (`systemctl enable --now "
    "tailscaled`); adjust the list in system.services",
)
def check_services(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    role = system_role(config)
    entries = _service_entries(config)
    if not entries:
        skip("system.services is empty: nothing configured")
    mine = [e for e in entries if role in _names(e.get("roles", ["node"]))]
    used, unused = [], []
    for entry in mine:
        when = _names(entry.get("when"))
        if when and not any(system_host.path(p).exists() for p in when):
            unused.append(f"{entry['name']} (none of {', '.join(when)} exists)")
        else:
            used.append(entry)
    if not used:
        why = f"not used here: {'; '.join(unused)}" if unused else f"none is for role {role}"
        skip(f"no service of system.services applies ({why})")
    running = running_processes((p for e in used for p in _names(e.get("process"))), system_host)
    verdicts = [_service_problem(system_host, e, running) for e in used]
    problems = [text for state, text in verdicts if state == "problem"]
    details = {"role": role, "services": [text for _, text in verdicts], "not_used": unused}
    if problems:
        message = "; ".join(problems)
        if role == "node":
            raise AssertionError(message)
        warn(f"{message} (system.role={role}: a warning here, a failure on nodes)")
    if all(state == "undecided" for state, _ in verdicts):
        skip("; ".join(text for _, text in verdicts))
    return {"message": "; ".join(text for _, text in verdicts), **details}


# -- packages -------------------------------------------------------------------------------


@check(
    id="system.packages",
    gates=["install"],
    title="Required OS packages are installed",
    severity="warning",
    requires=_OS,
    remediation="install them: `apt-get install -y <packages>` (the message lists them), or adjust system.packages",
)
def check_packages(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    wanted = [str(p) for p in config["system.packages"]]
    if not wanted:
        skip("system.packages is empty: nothing configured")
    states = dpkg_installed(system_host)
    if states is None:
        for rpmdb in ("/var/lib/rpm", "/usr/lib/sysimage/rpm"):
            if system_host.path(rpmdb).is_dir():
                skip(
                    f"no dpkg database; the rpm database at {rpmdb} is not read (it needs rpm itself, "
                    f"and checks never shell out): check with `rpm -q {' '.join(wanted)}`"
                )
        skip("no package database found (/var/lib/dpkg/status, /var/lib/rpm): cannot tell")
    installed = {name.split(":", 1)[0] for name, state in states.items() if state == "installed"}
    missing = [p for p in wanted if p.split(":", 1)[0] not in installed]
    removed = [p for p in missing if states.get(p) == "config-files"]
    if missing:
        extra = f" ({', '.join(removed)} removed, configuration left)" if removed else ""
        raise AssertionError(f"not installed: {', '.join(missing)}{extra}; `apt-get install -y {' '.join(missing)}`")
    return {"message": f"{len(wanted)} packages installed (dpkg): {', '.join(wanted)}", "packages": wanted}


# -- fsync latency --------------------------------------------------------------------------


def _percentile(sorted_ms: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_ms[max(0, math.ceil(pct / 100 * len(sorted_ms)) - 1)]


def fsync_latencies(directory: Path, samples: int) -> list[float]:
    """Write and fsync a small block ``samples`` times in a temp file there (removed after);
    latencies in milliseconds. Raises OSError (e.g. PermissionError) when it cannot write."""
    fd, name = tempfile.mkstemp(prefix=".mgn-fsync-", dir=directory)
    block = os.urandom(FSYNC_BLOCK)
    out = []
    try:
        # Untimed first round: it also commits the new file's inode and directory entry, which
        # etcd's long-lived, preallocated WAL files never pay per write.
        os.write(fd, block)
        os.fsync(fd)
        for _ in range(samples):
            started = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            out.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        os.unlink(name)
    return out


@check(
    id="system.disk.fsync",
    gates=["install"],
    title="Disk under the etcd data dir syncs fast enough",
    severity="warning",
    requires=_OS,
    remediation="put /var/lib/etcd on a local SSD/NVMe volume (not network storage or a busy "
    "shared disk); etcd wants fsync p99 < 10 ms or it churns leaders",
)
def check_disk_fsync(config: Config) -> dict[str, object]:
    linux_only()
    raw = str(config["system.etcd_dir"])
    directory = existing(Path(raw).expanduser())
    samples, limit = int(config["system.fsync_samples"]), float(config["system.max_fsync_p99_ms"])
    if samples < 1:
        raise ValueError(f"system.fsync_samples must be >= 1, not {samples}")
    try:
        latencies = sorted(fsync_latencies(directory, samples))
        first = None
        if _percentile(latencies, 99) >= limit:
            # Once more before judging: the run's own start (dozens of checks at once) can stall
            # a round; a slow disk stays slow.
            first = _percentile(latencies, 99)
            latencies = sorted(fsync_latencies(directory, samples))
    except PermissionError:
        skip(f"cannot write in {directory}: re-run as root to measure fsync latency there")
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    details: dict[str, object] = {
        "path": str(directory),
        "samples": samples,
        "block_bytes": FSYNC_BLOCK,
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(latencies[-1], 3),
        "limit_ms": limit,
    }
    if first is not None:
        details["first_p99_ms"] = round(first, 3)  # over the limit, so measured a second time
    where = raw if str(directory) == raw else f"{raw} (measured in {directory})"
    again = f", measured twice: first p99 {first:.2f} ms" if first is not None else ""
    node_requirement(
        config, p99 < limit, f"fsync p99 {p99:.2f} ms >= {limit:g} ms on {where} (p50 {p50:.2f} ms{again})"
    )
    return {"message": f"fsync p99 {p99:.2f} ms, p50 {p50:.2f} ms on {where} ({samples} samples)", **details}
