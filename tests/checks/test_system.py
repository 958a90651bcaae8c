"""System layer, unit level: each check on the real machine and on fake /proc,/sys,/etc trees."""

from __future__ import annotations

import gzip
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mgn_verify.checks import _sys_env, _sys_node, system
from mgn_verify.checks._host import Host, parse_assignments

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import Outcome, make_tree, run_check

V2_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\nproc /proc proc rw 0 0\n"
V1_MOUNTS = (
    "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n"
    "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0\n"
    "cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0\n"
)


def call(func: Any, tree: Path | None = None, **settings: Any) -> Outcome:
    """Run a system check with ``settings`` and, when given, ``system.root`` at ``tree``."""
    if tree is not None:
        settings["system.root"] = str(tree)
    config = make_config(settings)
    kwargs: dict[str, Any] = {}
    names = func.__code__.co_varnames[: func.__code__.co_argcount]
    if "config" in names:
        kwargs["config"] = config
    if "system_host" in names:
        kwargs["system_host"] = Host(config["system.root"])
    return run_check(func, **kwargs)


# -- on the real machine: never a false fail -----------------------------------------------


@pytest.mark.parametrize(
    "func",
    [
        system.check_os_supported,
        system.check_arch,
        system.check_kernel_version,
        system.check_cpu_count,
        system.check_memory_total,
        system.check_python_version,
        system.check_hostname,
        system.check_privileges,
        _sys_node.check_kernel_config,
        _sys_node.check_cgroups,
        _sys_node.check_sysctl_ip_forward,
        _sys_node.check_sysctl_bridge,
        _sys_node.check_cri,
        _sys_node.check_leftovers,
        _sys_env.check_time_skew,
        _sys_env.check_certs,
    ],
    ids=lambda f: f.__name__,
)
def test_real_machine_operator_role_never_fails(func: Any) -> None:
    outcome = call(func, **{"system.certs_dir": "/nonexistent/certs"})
    assert outcome.status != "fail", outcome.message


def test_os_supported_pass_and_fail() -> None:
    assert call(system.check_os_supported).status == "pass"
    outcome = call(system.check_os_supported, **{"system.supported_os": ["Plan9"]})
    assert outcome.status == "fail" and "Linux is not supported" in outcome.message


def test_arch_pass_and_fail() -> None:
    assert call(system.check_arch).status == "pass"
    assert call(system.check_arch, **{"system.supported_arch": ["riscv64"]}).status == "fail"


@pytest.mark.parametrize(
    ("release", "status"), [("6.1.0-18-amd64", "pass"), ("5.4.0", "pass"), ("4.19.0-25", "fail")]
)
def test_kernel_version(tmp_path: Path, release: str, status: str) -> None:
    tree = make_tree(tmp_path, {"/proc/sys/kernel/osrelease": release + "\n"})
    outcome = call(system.check_kernel_version, tree)
    assert outcome.status == status
    assert release in outcome.message


def _kernel_config(tmp_path: Path, options: list[str], gz: bool = True) -> Path:
    text = "\n".join(f"CONFIG_{o}=y" for o in options) + "\n# CONFIG_FOO is not set\n"
    if gz:
        return make_tree(tmp_path, {"/proc/config.gz": gzip.compress(text.encode())})
    return make_tree(tmp_path, {"/proc/sys/kernel/osrelease": "6.1.0\n", "/boot/config-6.1.0": text})


def test_kernel_config(tmp_path: Path) -> None:
    assert (
        call(_sys_node.check_kernel_config, _kernel_config(tmp_path / "a", system.KERNEL_CONFIG)).status
        == "pass"
    )
    short = _kernel_config(tmp_path / "b", system.KERNEL_CONFIG[1:], gz=False)
    node = call(_sys_node.check_kernel_config, short, **{"system.role": "node"})
    assert (
        node.status == "fail" and "CONFIG_NAMESPACES" in node.message and "/boot/config-6.1.0" in node.message
    )
    assert call(_sys_node.check_kernel_config, short).status == "warn"  # operator host: only a warning
    assert call(_sys_node.check_kernel_config, make_tree(tmp_path / "c", {"/etc/": ""})).status == "skip"


@pytest.mark.parametrize(
    ("files", "role", "status", "text"),
    [
        (
            {
                "/proc/mounts": V2_MOUNTS,
                "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids",
            },
            "node",
            "pass",
            "cgroup v2",
        ),
        (
            {"/proc/mounts": V2_MOUNTS, "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory"},
            "node",
            "fail",
            "lacks controllers: pids",
        ),
        (
            {"/proc/mounts": V2_MOUNTS, "/sys/fs/cgroup/cgroup.controllers": "cpu io memory"},
            "operator",
            "warn",
            "cpuset, pids",
        ),
        ({"/proc/mounts": V1_MOUNTS}, "node", "warn", "cgroup v1"),
        ({"/proc/mounts": "proc /proc proc rw 0 0\n"}, "node", "fail", "no cgroup hierarchy"),
    ],
)
def test_cgroups(tmp_path: Path, files: dict[str, str | bytes], role: str, status: str, text: str) -> None:
    outcome = call(_sys_node.check_cgroups, make_tree(tmp_path, files), **{"system.role": role})
    assert (outcome.status, text in outcome.message) == (status, True), outcome.message


def test_swap(tmp_path: Path) -> None:
    header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    off = make_tree(tmp_path / "off", {"/proc/swaps": header})
    on = make_tree(tmp_path / "on", {"/proc/swaps": header + "/dev/sda2 partition\t2097148\t0\t-2\n"})
    assert call(_sys_node.check_swap, off).message == "no active swap"
    outcome = call(_sys_node.check_swap, on)
    assert outcome.status == "fail" and "/dev/sda2" in outcome.message and "2047 MiB" in outcome.message
    assert call(_sys_node.check_swap, on, **{"system.swap_allowed": True}).status == "pass"


@pytest.mark.parametrize(
    ("files", "module", "status", "text"),
    [
        (
            {"/proc/modules": "br_netfilter 32768 0 - Live 0x0\nbridge 1 1 br_netfilter, Live 0x0\n"},
            "br_netfilter",
            "pass",
            "loaded (/proc/modules)",
        ),
        ({"/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n"}, "br_netfilter", "pass", "builtin"),
        ({"/proc/filesystems": "nodev\tproc\nnodev\toverlay\n"}, "overlay", "pass", "builtin"),
        (
            {
                "/proc/modules": "",
                "/proc/sys/kernel/osrelease": "6.1.0\n",
                "/lib/modules/6.1.0/modules.dep": "kernel/net/bridge/br_netfilter.ko.xz: "
                "kernel/net/bridge/bridge.ko\n",
            },
            "br_netfilter",
            "pass",
            "loadable",
        ),
        ({"/proc/modules": "", "/proc/sys/kernel/osrelease": "6.1.0\n"}, "overlay", "fail", "neither loaded"),
    ],
)
def test_modules(tmp_path: Path, files: dict[str, str | bytes], module: str, status: str, text: str) -> None:
    config = make_config({"system.root": str(make_tree(tmp_path, files)), "system.role": "node"})
    outcome = run_check(_sys_node.check_modules, config=config, system_host=Host(tmp_path), module=module)
    assert (outcome.status, text in outcome.message) == (status, True), outcome.message


def test_sysctl_ip_forward(tmp_path: Path) -> None:
    on = make_tree(tmp_path / "on", {"/proc/sys/net/ipv4/ip_forward": "1\n"})
    off = make_tree(tmp_path / "off", {"/proc/sys/net/ipv4/ip_forward": "0\n"})
    assert call(_sys_node.check_sysctl_ip_forward, on).status == "pass"
    node = call(_sys_node.check_sysctl_ip_forward, off, **{"system.role": "node"})
    assert node.status == "fail" and "net.ipv4.ip_forward = 0" in node.message
    assert call(_sys_node.check_sysctl_ip_forward, off).status == "warn"
    assert (
        call(_sys_node.check_sysctl_ip_forward, make_tree(tmp_path / "none", {"/proc/": ""})).status == "skip"
    )


@pytest.mark.parametrize(
    ("v4", "v6", "status"), [("1", "1", "pass"), ("0", "1", "fail"), ("1", "0", "warn"), (None, None, "fail")]
)
def test_sysctl_bridge(tmp_path: Path, v4: str | None, v6: str | None, status: str) -> None:
    files: dict[str, str | bytes] = {"/proc/sys/": ""}
    if v4 is not None and v6 is not None:
        files |= {
            "/proc/sys/net/bridge/bridge-nf-call-iptables": v4,
            "/proc/sys/net/bridge/bridge-nf-call-ip6tables": v6,
        }
    outcome = call(_sys_node.check_sysctl_bridge, make_tree(tmp_path, files), **{"system.role": "node"})
    assert outcome.status == status, outcome.message


def test_leftovers(tmp_path: Path) -> None:
    clean = make_tree(tmp_path / "clean", {"/var/lib/etcd/": "", "/etc/kubernetes/": ""})
    assert call(_sys_node.check_leftovers, clean, **{"system.role": "node"}).status == "pass"
    dirty = make_tree(
        tmp_path / "dirty",
        {"/etc/kubernetes/manifests/etcd.yaml": "kind: Pod\n", "/var/lib/etcd/member/snap/db": "x"},
    )
    outcome = call(_sys_node.check_leftovers, dirty, **{"system.role": "node"})
    assert outcome.status == "fail"
    assert (
        "/etc/kubernetes/manifests/etcd.yaml" in outcome.message
        and "/var/lib/etcd/ (not empty)" in outcome.message
    )


@pytest.fixture
def h2_socket(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(root, socket) where the socket answers the HTTP/2 preface with a SETTINGS frame."""
    root = make_tree(tmp_path, {"/run/containerd/": ""})
    path = root / "run/containerd/containerd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")

    threading.Thread(target=serve, daemon=True).start()
    yield root, path
    server.close()


def test_cri_answering(h2_socket: tuple[Path, Path]) -> None:
    root, _ = h2_socket
    outcome = call(_sys_node.check_cri, root, **{"system.role": "node"})
    assert outcome.status == "pass" and "HTTP/2 SETTINGS" in outcome.message


def test_cri_silent_and_missing(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"/run/containerd/": ""})
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(root / "run/containerd/containerd.sock"))
    server.listen(1)  # accepts into the backlog, never answers
    with server:
        outcome = call(_sys_node.check_cri, root, **{"system.role": "node", "system.timeout": 0.3})
    assert outcome.status == "fail" and "does not answer" in outcome.message
    empty = make_tree(tmp_path / "empty", {"/run/": ""})
    assert call(_sys_node.check_cri, empty, **{"system.role": "node"}).status == "fail"
    assert call(_sys_node.check_cri, empty).status == "skip"


def test_hostname(tmp_path: Path) -> None:
    good = make_tree(
        tmp_path / "a", {"/proc/sys/kernel/hostname": "node-1\n", "/etc/hosts": "10.1.2.3 node-1\n"}
    )
    outcome = call(system.check_hostname, good)
    assert outcome.status == "pass" and "10.1.2.3 (/etc/hosts)" in outcome.message
    bad = make_tree(tmp_path / "b", {"/proc/sys/kernel/hostname": "Node_1\n"})
    assert call(system.check_hostname, bad).status == "fail"


def test_binaries() -> None:
    ok = call(
        system.check_binaries, **{"system.binaries_operator": ["sh"], "system.binaries_operator_optional": []}
    )
    assert ok.status == "pass"
    missing = call(
        system.check_binaries, **{"system.role": "node", "system.binaries_node": ["sh", "no-such-tool-x"]}
    )
    assert missing.status == "fail" and "no-such-tool-x" in missing.message and "role node" in missing.message
    optional = call(
        system.check_binaries,
        **{"system.binaries_operator": ["sh"], "system.binaries_operator_optional": ["no-such-tool-y"]},
    )
    assert optional.status == "warn" and "no-such-tool-y" in optional.message


def test_privileges(monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(system.check_privileges).status == "skip"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    outcome = call(system.check_privileges, **{"system.role": "node"})
    assert outcome.status == "fail" and "uid 1000" in outcome.message
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert call(system.check_privileges, **{"system.require_root": True}).status == "pass"


def test_limits(tmp_path: Path) -> None:
    assert call(system.check_limits_nofile, **{"system.min_nofile": 16}).status == "pass"
    assert call(system.check_limits_nofile, **{"system.min_nofile": 2**40}).status == "fail"
    files: dict[str, str | bytes] = {
        "/proc/sys/fs/inotify/max_user_watches": "8192\n",
        "/proc/sys/fs/inotify/max_user_instances": "1024\n",
    }
    outcome = call(system.check_limits_inotify, make_tree(tmp_path, files))
    assert outcome.status == "fail" and "max_user_watches=8192 < 524288" in outcome.message
    assert "instances" not in outcome.message
    assert (
        call(system.check_limits_inotify, tmp_path, **{"system.min_inotify_watches": 8192}).status == "pass"
    )
    assert call(system.check_limits_inotify, make_tree(tmp_path / "x", {"/proc/": ""})).status == "skip"


def test_time_sync(tmp_path: Path) -> None:
    synced = make_tree(tmp_path, {"/run/systemd/timesync/synchronized": ""})
    assert call(_sys_env.check_time_sync, synced).status == "pass"
    assert call(_sys_env.check_time_sync).status in ("pass", "fail", "skip")  # the machine decides


def test_time_skew(sntp_server: Any, silent_udp: int) -> None:
    good, off = sntp_server(0.0, 2), sntp_server(30.0, 2)
    outcome = call(_sys_env.check_time_skew, **{"system.time_servers": [f"127.0.0.1:{good}"]})
    assert outcome.status == "pass"
    outcome = call(
        _sys_env.check_time_skew, **{"system.time_servers": [f"127.0.0.1:{good}", f"127.0.0.1:{off}"]}
    )
    assert outcome.status == "fail" and f"127.0.0.1:{off}" in outcome.message and "+30.0" in outcome.message
    # Falls back to network.ntp_servers; no answer at all means "cannot decide", not a failure.
    silent = call(
        _sys_env.check_time_skew,
        **{"network.ntp_servers": [f"127.0.0.1:{silent_udp}"], "system.timeout": 0.2},
    )
    assert silent.status == "skip" and "no time server answered" in silent.message
    assert call(_sys_env.check_time_skew).status == "skip"


def test_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert call(_sys_env.check_proxy).status == "skip"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.svc,10.0.0.0/8")
    outcome = call(_sys_env.check_proxy)
    assert outcome.status == "fail"
    assert "100.64.0.0/10" in outcome.message and "fd7a:115c:a1e0::/48" in outcome.message
    assert "10.244.0.0/16" not in outcome.message.split("cover")[1].split(";")[0]  # inside 10.0.0.0/8
    monkeypatch.setenv("no_proxy", "100.64.0.0/10,fd7a:115c:a1e0::/48")
    assert call(_sys_env.check_proxy).status == "pass"
    monkeypatch.setenv("NO_PROXY", "*")
    assert call(_sys_env.check_proxy).status == "pass"


# -- Host: one read per file and run --------------------------------------------------------


def test_host_reads_each_file_once(tmp_path: Path) -> None:
    make_tree(tmp_path, {"/proc/sys/kernel/osrelease": "6.1.0-test\n", "/proc/modules": "overlay 1 0 - Live 0x0\n"})
    host = Host(tmp_path)
    assert host.kernel_release() == "6.1.0-test"
    assert host.module_state("overlay") == ("loaded", "/proc/modules")
    (tmp_path / "proc/sys/kernel/osrelease").write_text("9.9.9\n")
    (tmp_path / "proc/modules").unlink()
    assert host.kernel_release() == "6.1.0-test"  # the run's snapshot: read once, remembered
    assert host.module_state("overlay") == ("loaded", "/proc/modules")
    assert host.read("/nonexistent") is None
    assert Host(tmp_path).kernel_release() == "9.9.9"  # a new run reads afresh


def test_parse_assignments_for_os_release_and_firewall_configs() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12"\n# ENABLED=no\n  ENABLED=yes \nID=\'debian\'\nno equals\n=orphan\n'
    assert parse_assignments(text) == {"PRETTY_NAME": "Debian GNU/Linux 12", "ENABLED": "yes", "ID": "debian"}
    assert parse_assignments(None) == {}
