"""End to end: the real ``mgn verify system network`` in a subprocess, against local services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from mgn_verify.testing import run_verify
from tests.checks.servers import DnsServer, TlsLab


def test_bare_run_is_complete_and_has_no_error() -> None:
    run = run_verify(["system", "network"])
    statuses = run.statuses()
    for check_id in (
        "system.os.supported",
        "system.kernel.version",
        "system.cgroups",
        "system.swap",
        "system.modules[br_netfilter]",
        "system.modules[overlay]",
        "system.sysctl.ip_forward",
        "system.sysctl.bridge",
        "system.ports.free[6443]",
        "system.ports.free[8090]",
        "system.time.sync",
        "system.certs",
        "network.interface.default",
        "network.dns.resolve[localhost]",
        "network.cidr.overlap",
        "network.mtu",
    ):
        assert check_id in statuses, check_id
    assert "error" not in statuses.values(), {k: v for k, v in statuses.items() if v == "error"}
    assert statuses["network.tcp.connect"] == "skip"
    assert (
        run.result("network.tcp.connect")["message"] == "network.tcp_endpoints is empty: nothing configured"
    )
    assert run.report is not None and run.report["run"]["duration_s"] < 5


def test_configured_lab(
    tmp_path: Path,
    dnsmasq: DnsServer,
    tls_lab: TlsLab,
    http_server: str,
    closed_port: int,
    sntp_server: object,
) -> None:
    ntp = sntp_server(0.0, 2)  # type: ignore[operator]
    config = {
        "network": {
            "resolvers": [dnsmasq.resolver],
            "timeout": 1.0,
            "dns_names": ["api.test", "missing.test"],
            "tcp_endpoints": [f"127.0.0.1:{closed_port}", "missing.test:443"],
            "https_endpoints": [tls_lab.urls["valid"], tls_lab.urls["expired"], f"{http_server}/fail"],
            "ca_bundle": tls_lab.ca_bundle,
            "ntp_servers": [f"127.0.0.1:{ntp}"],
        }
    }
    path = tmp_path / "mgn.yaml"
    path.write_text(yaml.safe_dump(config))
    run = run_verify(["network", "--config", str(path)])
    s = run.statuses()
    valid, expired = tls_lab.urls["valid"], tls_lab.urls["expired"]
    valid_ep, expired_ep = valid.split("/")[2], expired.split("/")[2]
    assert s["network.dns.resolve[api.test]"] == "pass"
    assert "NXDOMAIN" in run.result("network.dns.resolve[missing.test]")["message"]
    assert run.result(f"network.tcp.connect[127.0.0.1:{closed_port}]")["message"].startswith(
        "connection refused"
    )
    assert run.result("network.tcp.connect[missing.test:443]")["message"].startswith(
        "DNS failure for missing.test"
    )
    assert s[f"network.tcp.connect[{valid_ep}]"] == "pass"  # added for the https URL
    assert s[f"network.tls.certificate[{valid}]"] == "pass"
    assert s[f"network.https.get[{valid}]"] == "pass"
    assert s[f"network.tcp.connect[{expired_ep}]"] == "pass"
    assert "certificate expired" in run.result(f"network.tls.certificate[{expired}]")["message"]
    blocked = run.result(f"network.https.get[{expired}]")
    assert blocked["status"] == "blocked" and f"network.tls.certificate[{expired}]" in blocked["blocked_by"]
    assert "HTTP 500" in run.result(f"network.https.get[{http_server}/fail]")["message"]
    assert s[f"network.ntp.reach[127.0.0.1:{ntp}]"] == "pass"
    assert run.exit_code == 1


def test_node_role_on_a_fake_tree_and_a_held_port(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name, text in {
        "proc/sys/net/ipv4/ip_forward": "0\n",
        "proc/swaps": "Filename\n",
        "proc/mounts": "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n",
        "sys/fs/cgroup/cgroup.controllers": "cpuset cpu memory pids\n",
        "proc/modules": "br_netfilter 1 0 - Live 0\noverlay 1 0 - Live 0\n",
        "proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
        "proc/sys/net/bridge/bridge-nf-call-ip6tables": "1\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    code = (
        "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        run = run_verify(
            [
                "system",
                "--set",
                f"system.root={root}",
                "--set",
                "system.role=node",
                "--set",
                f"system.ports={port}",
                "--set",
                "system.cri_socket=/run/none.sock",
                "--check",
                "system.sysctl.*",
                "--check",
                "system.cgroups",
                "--check",
                "system.swap",
                "--check",
                "system.ports.*",
                "--check",
                "system.cri",
            ]
        )
        holder.kill()
    s = run.statuses()
    assert s["system.sysctl.ip_forward"] == "fail"
    assert s["system.sysctl.bridge"] == "pass" and s["system.modules[br_netfilter]"] == "pass"
    assert s["system.cgroups"] == "pass" and s["system.swap"] == "pass"
    held = run.result(f"system.ports.free[{port}]")
    assert held["status"] == "fail" and f"held by pid {holder.pid} (python" in held["message"]
    assert s["system.cri"] == "fail"


def test_list_and_explain_show_the_checks() -> None:
    env = {**os.environ, "MGN_CONFIG": os.devnull}
    out = subprocess.run(
        [sys.executable, "-m", "mgn_verify", "verify", "list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    for check_id in ("system.ports.free[6443]", "network.cidr.overlap", "network.tcp.connect"):
        assert check_id in out.stdout, out.stdout + out.stderr
    explained = subprocess.run(
        [sys.executable, "-m", "mgn_verify", "verify", "explain", "system.sysctl.bridge"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "bridge-nf-call-iptables" in explained.stdout, explained.stdout + explained.stderr
