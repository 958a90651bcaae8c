"""The ``system`` layer: is this host fit to run GuildNet? (thresholds from ``system.*``).

Checks that need only the platform and psutil live here; the node prerequisites (kernel,
cgroups, swap, modules, sysctls, runtime, leftovers, ports) are in ``_sys_node`` and the
host environment (time, proxy, certificates) in ``_sys_env``; both are registered by
``mgn_register_checks`` below, so the layer stays one plugin (``-p no:system``).

Files are read below ``system.root`` (see ``_host.Host``) so tests can fake any state.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import sys
from pathlib import Path

from mgn_verify import Config, Registry, check, fixture, hookimpl, skip, warn
from mgn_verify.config import SettingsRegistry

from . import _sys_env, _sys_extra, _sys_node
from ._common import KUBEADM_PORTS, existing, linux_only, module_checks, system_role
from ._dns import resolve
from ._host import Host
from ._net import Listener, listeners

GIB = 1024**3
MIB = 1024**2

HOSTAPP_PORT = 8090
KERNEL_CONFIG = [
    "NAMESPACES",
    "NET_NS",
    "PID_NS",
    "IPC_NS",
    "UTS_NS",
    "CGROUPS",
    "CGROUP_CPUACCT",
    "CGROUP_DEVICE",
    "CGROUP_FREEZER",
    "CGROUP_PIDS",
    "CGROUP_SCHED",
    "CPUSETS",
    "MEMCG",
    "INET",
    "EXT4_FS",
    "PROC_FS",
    "NETFILTER_XT_TARGET_REDIRECT",
    "NETFILTER_XT_MATCH_COMMENT",
    "FAIR_GROUP_SCHED",
]
LEFTOVERS = [
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    "/etc/kubernetes/manifests/kube-scheduler.yaml",
    "/etc/kubernetes/manifests/etcd.yaml",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/etcd/",
]


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add(
        "system.root",
        "/",
        help="root below which /proc, /sys, /etc, /var are read (tests point it at a fake tree)",
    )
    add(
        "system.role",
        "operator",
        help="'operator' (the host running mgn) or 'node' (a Kubernetes node): picks "
        "the binaries needed, and whether node prerequisites fail (node) or only warn (operator)",
    )
    add("system.supported_os", ["Linux"], help="operating systems GuildNet supports (platform.system())")
    add("system.supported_arch", ["x86_64", "aarch64"], help="CPU architectures (platform.machine())")
    add("system.min_kernel", "5.4", help="oldest kernel release without a warning (cgroup v2 wants >= 5.10)")
    add(
        "system.kernel_config_required",
        KERNEL_CONFIG,
        help="CONFIG_* options (without prefix) that must be y or m (kubeadm's SystemVerification list)",
    )
    add(
        "system.cgroup_controllers",
        ["cpu", "cpuset", "memory", "pids"],
        help="cgroup controllers kubelet needs enabled",
    )
    add("system.min_cpus", 2, help="minimum logical CPUs (kubeadm's floor for a control plane)")
    add("system.min_memory_mb", 1700, help="minimum total memory in MiB (kubeadm's floor)")
    add(
        "system.disk_paths",
        ["/", "/var/lib/containerd", "/var/lib/kubelet", "/var/lib/etcd", "~/.guildnet"],
        help="paths whose filesystems need free space (the nearest existing parent is measured)",
    )
    add("system.min_disk_free_gb", 10.0, help="minimum free GiB on each disk path")
    add("system.min_python", "3.11", help="minimum Python version for mgn and its tools")
    add(
        "system.swap_allowed",
        False,
        help="true when kubelet is configured for swap (failSwapOn: false, "
        "NodeSwap): active swap then passes",
    )
    add("system.max_clock_skew_s", 2.0, help="largest tolerated |offset| to the time servers, seconds")
    add(
        "system.time_servers",
        [],
        help="'host[:port]' NTP servers to measure skew against "
        "(empty: network.ntp_servers; both empty: skew check skipped)",
    )
    add("system.binaries_operator", ["kubectl"], help="tools the operator host must have on PATH")
    add(
        "system.binaries_operator_optional",
        ["talosctl", "tailscale", "curl", "jq"],
        help="tools the operator host should have (missing: warning)",
    )
    add(
        "system.binaries_node",
        ["ip", "iptables", "mount", "nsenter"],
        help="tools a node must have on PATH (kubeadm's mandatory list)",
    )
    add(
        "system.binaries_node_optional",
        ["conntrack", "ebtables", "ethtool", "socat", "tc"],
        help="tools a node should have (missing: warning)",
    )
    add("system.require_root", False, help="a later step needs root (always true for system.role=node)")
    add(
        "system.ports",
        [*KUBEADM_PORTS, HOSTAPP_PORT],
        help="TCP ports GuildNet will listen on: they must be free",
    )
    add(
        "system.leftover_paths",
        LEFTOVERS,
        help="files that must not exist, and directories (ending in /) "
        "that must be absent or empty, before an install",
    )
    add(
        "system.cri_socket",
        ["/run/containerd/containerd.sock", "/run/crio/crio.sock", "/run/cri-dockerd.sock"],
        help="container runtime sockets; the first present one must answer",
    )
    add("system.min_nofile", 65536, help="minimum open-files limit (RLIMIT_NOFILE soft)")
    add("system.min_inotify_watches", 524288, help="minimum fs.inotify.max_user_watches")
    add("system.min_inotify_instances", 512, help="minimum fs.inotify.max_user_instances")
    add(
        "system.proxy_bypass",
        [],
        help="extra hosts/CIDRs NO_PROXY must cover when a proxy is set (the API "
        "host, pod/service CIDRs and the tailnet ranges are always required)",
    )
    add("system.certs_dir", "~/.guildnet/certs", help="GuildNet's local TLS material (*.crt/*.pem + *.key)")
    add("system.cert_warn_days", 30, help="warn when a local certificate expires within this many days")
    add(
        "system.cni_ports",
        ["8472/udp"],
        help="'port/proto' the CNI needs open between nodes (flannel VXLAN 8472/udp; Calico "
        "179/tcp, 4789/udp; Cilium 8472/udp, 4240/tcp); with system.ports, what system.firewall wants allowed",
    )
    add(
        "system.services",
        _sys_extra.DEFAULT_SERVICES,
        help="services to verify: {name, unit (enabled at boot), process (running), roles "
        "(default [node]), when (paths of which one must exist for it to apply)}; unit/process "
        "may be lists (any of them)",
    )
    add("system.packages", [], help="OS packages that must be installed (dpkg); empty: check skipped")
    add("system.etcd_dir", "/var/lib/etcd", help="etcd data dir whose disk (nearest existing parent) is fsync-tested")
    add("system.max_fsync_p99_ms", 10.0, help="largest tolerated fsync p99 latency in ms (etcd's guidance)")
    add("system.fsync_samples", 50, help="write+fsync rounds of a 2300-byte block for system.disk.fsync")
    add("system.timeout", 2.0, help="seconds for local probes (hostname lookup, runtime socket, NTP)")


@hookimpl
def mgn_register_checks(registry: Registry, config: Config) -> None:
    add = registry.add_check
    for func in module_checks(_sys_node, _sys_env, _sys_extra):
        add(func)
    add(_sys_node.ports_check(config["system.ports"]))


@fixture
def system_host(config: Config) -> Host:
    """The host's files below ``system.root``."""
    return Host(config["system.root"])


@fixture
def tcp_listeners() -> dict[int, list[Listener]]:
    """Every listening TCP socket by port, read once per run for all ``system.ports.free`` checks."""
    return listeners()


@check(
    id="system.os.supported",
    gates=["install"],
    title="Operating system is supported",
    severity="critical",
    remediation="run GuildNet on one of system.supported_os (Linux for nodes)",
)
def check_os_supported(config: Config, system_host: Host) -> dict[str, object]:
    name = platform.system()
    supported = config["system.supported_os"]
    assert name in supported, f"{name} is not supported (supported: {', '.join(supported)})"
    pretty = system_host.os_release().get("PRETTY_NAME", "")
    return {"message": f"{name} {platform.release()}" + (f" ({pretty})" if pretty else "")}


@check(
    id="system.arch",
    gates=["install"],
    title="CPU architecture is supported",
    requires=["system.os.supported"],
    remediation="use an amd64 (x86_64) or arm64 (aarch64) host; images exist for those only",
)
def check_arch(config: Config) -> dict[str, object]:
    machine = platform.machine()
    supported = config["system.supported_arch"]
    assert machine in supported, f"{machine} is not supported (supported: {', '.join(supported)})"
    return {"message": machine}


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    return tuple(int(p) for p in match.groups() if p is not None) if match else ()


@check(
    id="system.kernel.version",
    gates=["install"],
    title="Kernel is recent enough",
    severity="warning",
    requires=["system.os.supported"],
    remediation="upgrade to an LTS kernel >= system.min_kernel (5.10+ for cgroup v2, e.g. "
    "`apt install linux-image-amd64`), then reboot",
)
def check_kernel_version(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    release = system_host.kernel_release()
    have, want = _version_tuple(release), _version_tuple(str(config["system.min_kernel"]))
    assert have, f"cannot parse kernel release {release!r}"
    assert have >= want, f"kernel {release} is older than {config['system.min_kernel']}"
    return {"message": f"kernel {release}"}


@check(
    id="system.cpu.count",
    gates=["install"],
    title="Enough CPUs",
    requires=["system.os.supported"],
    remediation="give the host more vCPUs, or lower system.min_cpus for a worker",
)
def check_cpu_count(config: Config) -> dict[str, object]:
    count = os.cpu_count() or 0
    minimum = config["system.min_cpus"]
    assert count >= minimum, f"{count} CPUs < {minimum} required"
    return {"message": f"{count} CPUs"}


@check(
    id="system.memory.total",
    gates=["install"],
    title="Enough memory",
    requires=["system.os.supported"],
    remediation="add memory, or lower system.min_memory_mb for a small lab",
)
def check_memory_total(config: Config) -> dict[str, object]:
    import psutil  # lazy: only runs that include this check pay for it

    total_mb = psutil.virtual_memory().total // MIB
    minimum = config["system.min_memory_mb"]
    assert total_mb >= minimum, f"{total_mb} MiB < {minimum} MiB required"
    return {"message": f"{total_mb} MiB"}


@check(
    id="system.disk.free",
    gates=["install"],
    title="Enough free disk space",
    requires=["system.os.supported"],
    remediation="free space (e.g. `crictl rmi --prune`, remove old logs) or raise the volume size",
)
def check_disk_free(config: Config) -> dict[str, object]:
    minimum = config["system.min_disk_free_gb"]
    report: dict[str, object] = {}
    short = []
    for raw in config["system.disk_paths"]:
        path = existing(Path(raw).expanduser())
        free_gb = shutil.disk_usage(path).free / GIB
        report[raw] = round(free_gb, 1)
        if free_gb < minimum:
            short.append(f"{raw} ({path}): {free_gb:.1f} GiB free")
    if not report:
        skip("system.disk_paths is empty")
    assert not short, f"below {minimum} GiB: " + "; ".join(short)
    return {"message": ", ".join(f"{k}: {v} GiB" for k, v in report.items()), "free_gib": report}


@check(
    id="system.python.version",
    gates=["install"],
    title="Python is recent enough",
    remediation="install Python >= system.min_python (e.g. `apt install python3.11`)",
)
def check_python_version(config: Config) -> dict[str, object]:
    wanted = tuple(int(p) for p in str(config["system.min_python"]).split("."))
    assert sys.version_info[: len(wanted)] >= wanted, (
        f"Python {platform.python_version()} < {config['system.min_python']}"
    )
    return {"message": f"Python {platform.python_version()}"}


_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


@check(
    id="system.hostname",
    gates=["install"],
    title="Hostname is a valid DNS name and resolves",
    severity="warning",
    requires=["system.os.supported"],
    remediation="set a lowercase RFC 1123 name (`hostnamectl set-hostname node-1`) and add it to "
    "/etc/hosts (`127.0.1.1 node-1`) or DNS",
)
def check_hostname(config: Config, system_host: Host) -> dict[str, object]:
    name = system_host.hostname()
    assert len(name) <= 253 and _DNS1123.match(name), (
        f"hostname {name!r} is not a valid DNS-1123 name (lowercase letters, digits, '-', '.'; "
        "Kubernetes uses it as the node name)"
    )
    answer = resolve(name, [], config["system.timeout"], system_host)
    assert answer.ok, f"hostname {name!r} does not resolve: {answer.error}"
    return {"message": f"{name} → {', '.join(answer.addresses)} ({answer.source})"}


@check(
    id="system.binaries",
    gates=["install"],
    title="Required tools are on PATH",
    requires=["system.os.supported"],
    remediation="install the missing tools (Debian/Ubuntu: `apt install iproute2 iptables mount "
    "util-linux conntrack socat ethtool`; kubectl/talosctl/tailscale from their "
    "vendors), or adjust system.binaries_<role>",
)
def check_binaries(config: Config) -> dict[str, object]:
    role = system_role(config)
    required, optional = config[f"system.binaries_{role}"], config[f"system.binaries_{role}_optional"]
    found = {name: shutil.which(name) for name in [*required, *optional]}
    if not found:
        skip(f"no tools configured for role {role}")
    details: dict[str, object] = {"role": role, "found": {k: v for k, v in found.items() if v}}
    missing = [name for name in required if not found[name]]
    assert not missing, f"missing on PATH for role {role}: {', '.join(missing)}"
    absent = [name for name in optional if not found[name]]
    if absent:
        warn(f"all required tools found; optional ones missing for role {role}: {', '.join(absent)}")
    return {"message": f"{len(found)} tools found for role {role}", **details}


@check(
    id="system.privileges",
    gates=["install"],
    title="Running with the privileges the install needs",
    requires=["system.os.supported"],
    remediation="re-run as root: `sudo mgn verify system` (node installs write /etc and load modules)",
)
def check_privileges(config: Config) -> dict[str, object]:
    linux_only()
    needed = config["system.require_root"] or config["system.role"] == "node"
    uid = os.geteuid()
    if not needed:
        skip(f"root not needed for role {config['system.role']} (running as uid {uid})")
    sudo = " (sudo is available)" if shutil.which("sudo") else " and sudo is not installed"
    assert uid == 0, f"running as uid {uid}, but the install needs root{sudo}"
    return {"message": "running as root"}


@check(
    id="system.limits.nofile",
    gates=["install"],
    title="Open-files limit is high enough",
    severity="warning",
    requires=["system.os.supported"],
    remediation="raise it: `ulimit -n 1048576`, or LimitNOFILE=1048576 in the containerd/kubelet unit, "
    "or `* - nofile 1048576` in /etc/security/limits.conf",
)
def check_limits_nofile(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    minimum = config["system.min_nofile"]
    file_max = system_host.sysctl("fs.file-max") or "?"
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    assert soft == resource.RLIM_INFINITY or soft >= minimum, (
        f"open-files limit {shown} < {minimum} (hard {hard}, fs.file-max {file_max})"
    )
    return {"message": f"open-files limit {shown} (fs.file-max {file_max})"}


@check(
    id="system.limits.inotify",
    gates=["install"],
    title="inotify limits are high enough",
    severity="warning",
    requires=["system.os.supported"],
    remediation="`sysctl -w fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512` "
    "and persist it in /etc/sysctl.d/99-guildnet.conf",
)
def check_limits_inotify(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    wanted = {
        "fs.inotify.max_user_watches": config["system.min_inotify_watches"],
        "fs.inotify.max_user_instances": config["system.min_inotify_instances"],
    }
    have = {key: system_host.sysctl(key) for key in wanted}
    if all(v is None for v in have.values()):
        skip("no /proc/sys/fs/inotify (kernel without inotify?)")
    low = [f"{k}={have[k]} < {v}" for k, v in wanted.items() if have[k] is not None and int(have[k] or 0) < v]
    assert not low, "; ".join(low)
    return {"message": ", ".join(f"{k}={v}" for k, v in have.items())}
