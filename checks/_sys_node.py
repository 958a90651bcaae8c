"""System checks for what kubelet and kubeadm need from the kernel and the host.

Registered by ``system.mgn_register_checks`` (module-level checks of a helper module are not
collected on their own). A finding here fails on ``system.role=node`` and warns on the
operator host, through ``node_requirement``: kubelet does not run there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mgn_verify import Config, check, parametrize, skip, warn

from ._common import KUBEADM_PORTS, linux_only, node_requirement, nothing_configured
from ._host import Host
from ._net import Listener, http2_probe

__all__ = ["MODULES", "ports_check"]

MODULES = ["br_netfilter", "overlay"]
_OS = ["system.os.supported"]


@check(
    id="system.kernel.config",
    gates=["install"],
    title="Kernel has the options containers need",
    requires=_OS,
    remediation="use a distribution kernel (they enable these options), or rebuild with "
    "the missing CONFIG_* options set to y or m",
)
def check_kernel_config(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    found = system_host.kernel_config()
    if found is None:
        skip(
            "no kernel config readable (/proc/config.gz needs CONFIG_IKCONFIG_PROC; distributions ship "
            f"/boot/config-{system_host.kernel_release()})"
        )
    options, source = found
    required = config["system.kernel_config_required"]
    missing = [opt for opt in required if options.get(opt) not in ("y", "m")]
    node_requirement(
        config,
        not missing,
        f"kernel options missing in {source}: " + ", ".join(f"CONFIG_{m}" for m in missing),
    )
    return {"message": f"{len(required)} required options set ({source})", "source": source}


@check(
    id="system.cgroups",
    gates=["install"],
    title="cgroup v2 with the controllers kubelet needs",
    requires=_OS,
    remediation="boot with cgroup v2 (`systemd.unified_cgroup_hierarchy=1` on the kernel command line, "
    "default on current distributions) and enable the controllers in cgroup.subtree_control",
)
def check_cgroups(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    info = system_host.cgroups()
    needed = config["system.cgroup_controllers"]
    node_requirement(config, info.version != 0, "no cgroup hierarchy mounted at /sys/fs/cgroup")
    missing = [c for c in needed if c not in info.controllers]
    node_requirement(
        config,
        not missing,
        f"cgroup v{info.version} lacks controllers: {', '.join(missing)} "
        f"(available: {', '.join(sorted(info.controllers)) or 'none'})",
    )
    if info.version == 1:
        warn(
            "cgroup v1 (legacy or hybrid): deprecated, and kubelet >= 1.35 refuses it by default "
            "(failCgroupV1); migrate to cgroup v2"
        )
    return {
        "message": f"cgroup v2 with {', '.join(sorted(info.controllers))}",
        "controllers": sorted(info.controllers),
    }


@check(
    id="system.swap",
    gates=["install"],
    title="Swap is off (or configured for kubelet)",
    severity="warning",
    requires=_OS,
    remediation="`swapoff -a` and comment out swap lines in /etc/fstab, or configure kubelet for swap "
    "(failSwapOn: false, memorySwap.swapBehavior) and set system.swap_allowed=true",
)
def check_swap(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    swaps = system_host.swaps()
    if not swaps:
        return {"message": "no active swap"}
    total_mb = sum(size for _, size in swaps) // 1024
    shown = ", ".join(dev for dev, _ in swaps)
    if config["system.swap_allowed"]:
        return {"message": f"swap active ({shown}, {total_mb} MiB), allowed by system.swap_allowed"}
    raise AssertionError(
        f"swap is active ({shown}, {total_mb} MiB); kubelet refuses to start with swap "
        "unless configured for it"
    )


@check(
    id="system.modules",
    gates=["install"],
    title="Kernel module loaded or loadable",
    requires=_OS,
    remediation="`modprobe br_netfilter overlay` and persist: `printf 'br_netfilter\\noverlay\\n' > "
    "/etc/modules-load.d/k8s.conf`",
)
@parametrize("module", MODULES)
def check_modules(config: Config, system_host: Host, module: str) -> dict[str, object]:
    linux_only()
    state, evidence = system_host.module_state(module)
    node_requirement(
        config, state != "missing", f"kernel module {module} is neither loaded nor loadable ({evidence})"
    )
    if state == "loadable":
        return {"message": f"{module} not loaded yet but loadable ({evidence}); `modprobe {module}` loads it"}
    return {"message": f"{module} {state} ({evidence})"}


@check(
    id="system.sysctl.ip_forward",
    gates=["install"],
    title="IPv4 forwarding is on",
    requires=_OS,
    remediation="`sysctl -w net.ipv4.ip_forward=1` and persist: "
    "`echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-kubernetes.conf`",
)
def check_sysctl_ip_forward(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    value = system_host.sysctl("net.ipv4.ip_forward")
    if value is None:
        skip("/proc/sys/net/ipv4/ip_forward does not exist (no IPv4 stack)")
    node_requirement(config, value == "1", f"net.ipv4.ip_forward = {value} (pods cannot be routed)")
    return {"message": "net.ipv4.ip_forward = 1"}


@check(
    id="system.sysctl.bridge",
    gates=["install"],
    title="Bridged traffic goes through iptables",
    severity="critical",
    requires=["system.os.supported", "system.modules[br_netfilter]"],
    remediation="`modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 "
    "net.bridge.bridge-nf-call-ip6tables=1`, persisted in /etc/sysctl.d/99-kubernetes.conf",
)
def check_sysctl_bridge(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    v4 = system_host.sysctl("net.bridge.bridge-nf-call-iptables")
    v6 = system_host.sysctl("net.bridge.bridge-nf-call-ip6tables")
    node_requirement(
        config,
        v4 is not None,
        "net.bridge.bridge-nf-call-iptables does not exist (br_netfilter is not loaded)",
    )
    node_requirement(
        config,
        v4 == "1",
        f"net.bridge.bridge-nf-call-iptables = {v4} "
        "(Service traffic between pods on one node bypasses kube-proxy)",
    )
    if v6 is not None and v6 != "1":
        warn(f"net.bridge.bridge-nf-call-ip6tables = {v6} (needed for IPv6 Services)")
    return {"message": f"net.bridge.bridge-nf-call-iptables = 1, ip6tables = {v6}"}


@check(
    id="system.cri",
    gates=["install"],
    title="Container runtime socket answers",
    requires=_OS,
    remediation="install and start containerd (`systemctl enable --now containerd`) with the CRI "
    'plugin enabled (no `disabled_plugins = ["cri"]` in /etc/containerd/config.toml)',
)
def check_cri(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    sockets = config["system.cri_socket"]
    if not sockets:
        skip("system.cri_socket is empty")
    present = [s for s in sockets if system_host.path(s).is_socket()]
    if not present:
        if config["system.role"] != "node":
            skip(f"no container runtime socket ({', '.join(sockets)}); not needed on the operator host")
        raise AssertionError(f"no container runtime socket found (looked for {', '.join(sockets)})")
    path = present[0]
    try:
        how = http2_probe(str(system_host.path(path)), config["system.timeout"])
    except PermissionError:
        skip(f"{path} exists but only root may connect: re-run as root to probe it")
    except OSError as exc:
        node_requirement(
            config, False, f"{path} exists but the runtime does not answer: {exc.strerror or exc}"
        )
        raise  # unreachable: node_requirement raised
    return {"message": f"{path}: {how}"}


@check(
    id="system.leftovers",
    gates=["install"],
    title="No leftovers of an earlier Kubernetes install",
    requires=_OS,
    remediation="reset the node: `kubeadm reset -f && rm -rf /etc/kubernetes /var/lib/etcd` "
    "(or remove the files listed)",
)
def check_leftovers(config: Config, system_host: Host) -> dict[str, object]:
    linux_only()
    found, unreadable = [], []
    for raw in config["system.leftover_paths"]:
        path = system_host.path(raw)
        try:
            if raw.endswith("/"):
                if path.is_dir() and any(path.iterdir()):
                    found.append(f"{raw} (not empty)")
            elif path.exists():
                found.append(raw)
        except PermissionError:
            unreadable.append(raw)
    node_requirement(config, not found, "left from an earlier install: " + ", ".join(found))
    if unreadable:
        skip(f"cannot read {', '.join(unreadable)}: re-run as root to decide")
    return {"message": f"none of {len(config['system.leftover_paths'])} paths present", "found": found}


def ports_check(ports: list[int]) -> Callable[..., Any]:
    """``system.ports.free[<port>]`` for each configured port (built from config at run time)."""
    if not ports:
        return nothing_configured(
            "system.ports.free", "Ports GuildNet binds are free", "system.ports", remediation="", requires=_OS
        )

    @check(
        id="system.ports.free",
        gates=["install"],
        title="Port is free",
        requires=_OS,
        remediation="stop the process holding the port (`ss -ltnp 'sport = :PORT'` shows it), or "
        "move GuildNet to another port",
    )
    @parametrize("port", [int(p) for p in ports])
    def check_port_free(config: Config, tcp_listeners: dict[int, list[Listener]], port: int) -> dict[str, object]:
        held = tcp_listeners.get(port, [])
        message = "; ".join(item.describe() for item in held)
        if port in KUBEADM_PORTS:
            node_requirement(config, not held, f"port {port} in use: {message}")
        else:
            assert not held, f"port {port} in use: {message}"
        return {"message": f"port {port} is free"}

    return check_port_free
