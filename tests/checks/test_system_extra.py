"""system.firewall, system.services, system.packages, system.disk.fsync: fixture trees below
``system.root``, real processes (a copy of ``sleep`` named like the daemon), a real tmp dir."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from mgn_verify.checks import _sys_extra
from mgn_verify.checks._common import module_checks
from mgn_verify.checks._host import Host
from mgn_verify.checks._sys_facts import parse_port, running_processes, unit_state

from mgn_verify.testing import make_config, run_verify
from tests.checks._layer_helpers import Outcome, make_tree, run_check


def call(func: Any, tree: Path | None = None, **settings: Any) -> Outcome:
    if tree is not None:
        settings["system.root"] = str(tree)
    config = make_config(settings)
    kwargs: dict[str, Any] = {"config": config}
    if "system_host" in func.__code__.co_varnames[: func.__code__.co_argcount]:
        kwargs["system_host"] = Host(config["system.root"])
    return run_check(func, **kwargs)


@pytest.fixture
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], int]]:
    """``start(name)`` runs a process whose name is ``name`` (a copy of sleep) and returns its pid."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> int:
        binary = tmp_path_factory.mktemp("bin") / name
        shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
        proc = subprocess.Popen([str(binary), "60"])
        procs.append(proc)
        deadline = time.monotonic() + 5
        while psutil.Process(proc.pid).name() != name[:15]:  # until exec has happened
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.01)
        return proc.pid

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


# -- on the real machine, empty config: never a false fail ------------------------------------


@pytest.mark.parametrize("func", module_checks(_sys_extra), ids=lambda f: f.__name__)
def test_real_machine_operator_role_never_fails(func: Any) -> None:
    outcome = call(func)
    assert outcome.status != "fail", outcome.message


def test_bare_run_reports_the_new_checks() -> None:
    run = run_verify(
        [
            "system",
            "--check",
            "system.firewall",
            "--check",
            "system.services",
            "--check",
            "system.packages",
            "--check",
            "system.disk.fsync",
            "--set",
            "system.fsync_samples=3",
            "--set",
            "system.max_fsync_p99_ms=0.0001",
        ]
    )
    s = run.statuses()
    assert s["system.packages"] == "skip"
    assert run.result("system.packages")["message"] == "system.packages is empty: nothing configured"
    assert s["system.firewall"] in ("pass", "warn") and s["system.services"] in ("pass", "warn", "skip")
    fsync = run.result("system.disk.fsync")
    assert fsync["status"] == "warn" and fsync["severity"] == "warning", fsync  # below failure level
    assert run.exit_code == 0, run.stderr


# -- system.firewall -------------------------------------------------------------------------

UFW_ON = {
    "/etc/ufw/ufw.conf": "# comment\nENABLED=yes\nLOGLEVEL=low\n",
    "/etc/default/ufw": 'DEFAULT_INPUT_POLICY="DROP"\n',
}


def _ufw_rules(*tuples: str) -> str:
    lines = ["*filter", ":ufw-user-input - [0:0]", "### RULES ###"]
    for t in tuples:
        lines += [f"### tuple ### {t}", "-A ufw-user-input -p tcp --dport 1 -j ACCEPT", ""]
    return "\n".join([*lines, "### END RULES ###", "COMMIT", ""])


def test_no_firewall_passes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"/etc/ufw/ufw.conf": "ENABLED=no\n"})
    outcome = call(_sys_extra.check_firewall, tree, **{"system.role": "node"})
    assert outcome.status == "pass" and outcome.message.startswith("no host firewall active")


def test_ufw_without_rules_warns_with_the_allow_commands(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {**UFW_ON, "/etc/ufw/user.rules": _ufw_rules()})
    outcome = call(_sys_extra.check_firewall, tree, **{"system.role": "node"})
    assert outcome.status == "warn"
    assert "ufw is active (/etc/ufw/ufw.conf ENABLED=yes" in outcome.message
    assert "does not allow 6443/tcp, 10250/tcp" in outcome.message and "8472/udp" in outcome.message
    assert "`ufw allow 6443/tcp && ufw allow 10250/tcp" in outcome.message


def test_ufw_rules_allowing_everything_pass(tmp_path: Path) -> None:
    rules = _ufw_rules(
        "allow tcp 6443 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow tcp 10250,10257,10259 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow tcp 2379:2380 0.0.0.0/0 any 10.0.0.0/8 in comment=etcd",
        "limit any 8090 0.0.0.0/0 any 0.0.0.0/0 in_eth0",
        "allow udp 8472 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in",
    )
    tree = make_tree(tmp_path, {**UFW_ON, "/etc/ufw/user.rules": rules})
    outcome = call(_sys_extra.check_firewall, tree, **{"system.role": "node"})
    assert outcome.status == "pass", outcome.message
    assert "ufw active and allowing 6443/tcp" in outcome.message and "8472/udp" in outcome.message


def test_ufw_first_match_wins_and_outbound_rules_do_not_count(tmp_path: Path) -> None:
    rules = _ufw_rules(
        "deny tcp 6443 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow tcp 6443 0.0.0.0/0 any 0.0.0.0/0 in",
        "allow udp 8472 0.0.0.0/0 any 0.0.0.0/0 out",
    )
    tree = make_tree(tmp_path, {**UFW_ON, "/etc/ufw/user.rules": rules})
    outcome = call(_sys_extra.check_firewall, tree, **{"system.role": "node", "system.ports": [6443]})
    assert outcome.status == "warn" and "does not allow 6443/tcp, 8472/udp" in outcome.message


def test_ufw_accept_policy_passes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {**UFW_ON, "/etc/default/ufw": "DEFAULT_INPUT_POLICY=ACCEPT\n"})
    assert call(_sys_extra.check_firewall, tree, **{"system.role": "node"}).status == "pass"


def test_operator_host_only_needs_its_own_ports(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {**UFW_ON, "/etc/ufw/user.rules": _ufw_rules()})
    outcome = call(_sys_extra.check_firewall, tree)
    assert outcome.status == "warn" and "does not allow 8090/tcp:" in outcome.message
    assert "6443" not in outcome.message and "(system.role=operator)" in outcome.message


ZONE = """<?xml version="1.0" encoding="utf-8"?>
<zone{target}>
  <short>Public</short>
  <service name="ssh"/>
  <service name="kube-apiserver"/>
  <port protocol="tcp" port="2379-2380"/>
  <port protocol="udp" port="8472"/>
</zone>
"""
SERVICE = '<?xml version="1.0"?>\n<service><port protocol="tcp" port="6443"/></service>\n'


def test_firewalld_running_reads_the_default_zone(tmp_path: Path, daemon: Callable[[str], int]) -> None:
    files: dict[str, str | bytes] = {
        "/etc/firewalld/firewalld.conf": "DefaultZone=public\n",
        "/usr/lib/firewalld/zones/public.xml": ZONE.format(target=""),
        "/usr/lib/firewalld/services/kube-apiserver.xml": SERVICE,
    }
    tree = make_tree(tmp_path, files)
    idle = call(_sys_extra.check_firewall, tree, **{"system.role": "node"})
    assert idle.status == "pass" and "firewalld not running" in idle.message  # config alone: inactive
    daemon("firewalld")
    outcome = call(_sys_extra.check_firewall, tree, **{"system.role": "node"})
    assert outcome.status == "warn"
    assert "firewalld is active (firewalld process running; default zone public" in outcome.message
    assert "does not allow 10250/tcp, 10257/tcp, 10259/tcp, 8090/tcp:" in outcome.message
    assert "`firewall-cmd --permanent --add-port=10250/tcp" in outcome.message
    assert "6443" not in outcome.message.split("does not allow")[1]  # allowed through its service
    make_tree(tmp_path, {"/etc/firewalld/zones/public.xml": ZONE.format(target=' target="ACCEPT"')})
    assert call(_sys_extra.check_firewall, tree, **{"system.role": "node"}).status == "pass"


def test_parse_port() -> None:
    assert str(parse_port(6443)) == "6443/tcp" and str(parse_port("8472/UDP")) == "8472/udp"
    with pytest.raises(ValueError, match="expected a port"):
        parse_port("http")


# -- system.services -------------------------------------------------------------------------


def _systemd(tmp_path: Path, enabled: bool, masked: bool = False) -> Path:
    tree = make_tree(tmp_path, {"/lib/systemd/system/kubelet.service": "[Service]\n", "/etc/systemd/system/": ""})
    if enabled:
        wants = tree / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True)
        (wants / "kubelet.service").symlink_to("/lib/systemd/system/kubelet.service")
    if masked:
        (tree / "etc/systemd/system/kubelet.service").symlink_to("/dev/null")
    return tree


def test_services_on_a_node(tmp_path: Path, daemon: Callable[[str], int]) -> None:
    pid = daemon("containerd")
    outcome = call(_sys_extra.check_services, _systemd(tmp_path / "on", True), **{"system.role": "node"})
    assert outcome.status == "pass", outcome.message
    assert "kubelet enabled (/etc/systemd/system/multi-user.target.wants/kubelet.service)" in outcome.message
    assert f"container runtime running: containerd (pid {pid})" in outcome.message
    assert outcome.details["not_used"] == [
        "tailscaled (none of /var/lib/tailscale/, /usr/sbin/tailscaled, /usr/bin/tailscaled exists)"
    ]


def test_kubelet_not_enabled_fails_on_a_node(tmp_path: Path, daemon: Callable[[str], int]) -> None:
    daemon("containerd")
    outcome = call(_sys_extra.check_services, _systemd(tmp_path / "off", False), **{"system.role": "node"})
    assert outcome.status == "fail"
    assert outcome.message == (
        "kubelet: not enabled: kubelet.service disabled (/lib/systemd/system/kubelet.service installed, "
        "no *.wants/ link); `systemctl enable --now kubelet.service`"
    )
    masked = call(_sys_extra.check_services, _systemd(tmp_path / "m", True, True), **{"system.role": "node"})
    assert masked.status == "fail" and "kubelet.service masked" in masked.message


def test_runtime_not_running_fails_on_a_node(tmp_path: Path) -> None:
    services = [
        {"name": "kubelet", "unit": "kubelet.service", "roles": ["node"]},
        {"name": "runtime", "process": ["no-such-runtime-x", "no-such-runtime-y"]},
    ]
    tree = _systemd(tmp_path, True)
    outcome = call(_sys_extra.check_services, tree, **{"system.role": "node", "system.services": services})
    assert outcome.status == "fail"
    assert outcome.message == "runtime: no no-such-runtime-x / no-such-runtime-y process running"


def test_tailscaled_on_the_operator_host(tmp_path: Path, daemon: Callable[[str], int]) -> None:
    tree = make_tree(tmp_path, {"/var/lib/tailscale/": ""})
    services = [
        {"name": "tailscaled", "process": "ts-test-daemon", "roles": ["operator"], "when": "/var/lib/tailscale/"}
    ]
    outcome = call(_sys_extra.check_services, tree, **{"system.services": services})
    assert outcome.status == "warn"
    assert "tailscaled: no ts-test-daemon process running (system.role=operator" in outcome.message
    daemon("ts-test-daemon")
    assert call(_sys_extra.check_services, tree, **{"system.services": services}).status == "pass"
    default = call(_sys_extra.check_services, tree)  # the default list: tailscaled is used here
    assert default.status == "warn" and "tailscaled: no tailscaled process running" in default.message


def test_services_skip_when_nothing_applies_or_undecidable(tmp_path: Path) -> None:
    bare = make_tree(tmp_path / "bare", {"/etc/": ""})
    outcome = call(_sys_extra.check_services, bare)
    assert outcome.status == "skip" and "tailscaled (none of" in outcome.message
    node = call(
        _sys_extra.check_services,
        bare,
        **{"system.role": "node", "system.services": [{"name": "kubelet", "unit": "kubelet.service"}]},
    )
    assert node.status == "skip" and "cannot tell whether kubelet.service is enabled" in node.message
    assert call(_sys_extra.check_services, bare, **{"system.services": []}).status == "skip"
    assert unit_state(Host(bare), "kubelet.service").state == "no-systemd"
    with pytest.raises(ValueError, match="unknown keys"):
        call(_sys_extra.check_services, bare, **{"system.services": [{"name": "x", "unit_name": "y"}]})


def test_running_processes_sees_this_process() -> None:
    name = psutil.Process().name()
    assert running_processes([name, "no-such-process-z"]).keys() == {name}


def test_running_processes_uses_the_runs_one_process_table(daemon: Callable[[str], int], tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert "firewalld" not in running_processes(["firewalld"], host)
    daemon("firewalld")
    assert "firewalld" not in running_processes(["firewalld"], host)  # scanned once per run
    assert "firewalld" in running_processes(["firewalld"], Host(tmp_path))
    assert "firewalld" in running_processes(["firewalld"])


# -- system.packages -------------------------------------------------------------------------

DPKG = """Package: iptables
Status: install ok installed
Architecture: amd64

Package: conntrack
Status: deinstall ok config-files
Architecture: amd64

Package: libc6
Status: hold ok installed
Multi-Arch: same
"""


def test_packages_from_dpkg(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"/var/lib/dpkg/status": DPKG})
    ok = call(_sys_extra.check_packages, tree, **{"system.packages": ["iptables", "libc6:amd64"]})
    assert ok.status == "pass" and ok.details["packages"] == ["iptables", "libc6:amd64"]
    outcome = call(_sys_extra.check_packages, tree, **{"system.packages": ["iptables", "conntrack", "socat"]})
    assert outcome.status == "fail"  # a warning in a run: the check's severity is warning
    assert outcome.message == (
        "not installed: conntrack, socat (conntrack removed, configuration left); `apt-get install -y conntrack socat`"
    )


def test_packages_skip(tmp_path: Path) -> None:
    assert call(_sys_extra.check_packages).message == "system.packages is empty: nothing configured"
    rpm = call(
        _sys_extra.check_packages, make_tree(tmp_path / "rpm", {"/var/lib/rpm/": ""}), **{"system.packages": ["socat"]}
    )
    assert rpm.status == "skip" and "rpm database at /var/lib/rpm" in rpm.message and "rpm -q socat" in rpm.message
    none = call(_sys_extra.check_packages, make_tree(tmp_path / "x", {"/etc/": ""}), **{"system.packages": ["socat"]})
    assert none.status == "skip" and none.message.startswith("no package database found")


def test_packages_on_the_real_machine() -> None:
    if not Path("/var/lib/dpkg/status").exists():
        pytest.skip("not a dpkg system")
    assert call(_sys_extra.check_packages, **{"system.packages": ["dpkg"]}).status == "pass"
    assert call(_sys_extra.check_packages, **{"system.packages": ["no-such-package-q"]}).status == "fail"


# -- system.disk.fsync -----------------------------------------------------------------------


def test_fsync_pass_with_details(tmp_path: Path) -> None:
    outcome = call(
        _sys_extra.check_disk_fsync,
        **{"system.etcd_dir": str(tmp_path), "system.fsync_samples": 5, "system.max_fsync_p99_ms": 1e6},
    )
    assert outcome.status == "pass", outcome.message
    assert set(outcome.details) == {"path", "samples", "block_bytes", "p50_ms", "p99_ms", "max_ms", "limit_ms"}
    assert outcome.details["path"] == str(tmp_path) and outcome.details["samples"] == 5
    p50, p99 = outcome.details["p50_ms"], outcome.details["p99_ms"]
    assert isinstance(p50, float) and isinstance(p99, float) and 0 <= p50 <= p99
    assert outcome.message.startswith("fsync p99 ") and "(5 samples)" in outcome.message
    assert list(tmp_path.iterdir()) == []  # the temp file is gone


def test_fsync_too_slow(tmp_path: Path) -> None:
    settings = {
        "system.etcd_dir": str(tmp_path / "etcd" / "data"),
        "system.fsync_samples": 3,
        "system.max_fsync_p99_ms": 0.0001,
    }
    node = call(_sys_extra.check_disk_fsync, **settings, **{"system.role": "node"})
    assert node.status == "fail"
    assert ">= 0.0001 ms on " + str(tmp_path / "etcd" / "data") + f" (measured in {tmp_path})" in node.message
    operator = call(_sys_extra.check_disk_fsync, **settings)
    assert operator.status == "warn" and "required on Kubernetes nodes" in operator.message
    assert "measured twice: first p99 " in operator.message  # over the limit: re-measured once
    assert list(tmp_path.iterdir()) == []


def test_fsync_unwritable_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    outcome = call(_sys_extra.check_disk_fsync, **{"system.etcd_dir": str(tmp_path)})
    assert outcome.status == "skip" and f"cannot write in {tmp_path}: re-run as root" in outcome.message
    monkeypatch.undo()
    with pytest.raises(ValueError, match="fsync_samples"):
        call(_sys_extra.check_disk_fsync, **{"system.etcd_dir": str(tmp_path), "system.fsync_samples": 0})


def test_percentile_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert _sys_extra._percentile(values, 50) == 50.0 and _sys_extra._percentile(values, 99) == 99.0
    assert _sys_extra._percentile([3.0], 99) == 3.0
