"""system.ports.free against a real listener held by a child process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from mgn_verify.checks import _sys_node
from mgn_verify.checks._net import listeners

from mgn_verify.testing import make_config
from tests.checks._layer_helpers import free_port, run_check

_HOLDER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_port() -> Iterator[tuple[int, int]]:
    """(port, pid) of a listener owned by a child Python process."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port, proc.pid
        proc.kill()


def test_held_port_names_the_process(held_port: tuple[int, int]) -> None:
    port, pid = held_port
    func = _sys_node.ports_check([port])
    outcome = run_check(func, config=make_config({}), tcp_listeners=listeners(), port=port)
    assert outcome.status == "fail"
    assert f"port {port} in use: 127.0.0.1:{port} held by pid {pid} (python" in outcome.message


def test_free_port_passes() -> None:
    port = free_port()
    func = _sys_node.ports_check([port])
    assert run_check(func, config=make_config({}), tcp_listeners=listeners(), port=port).status == "pass"


def test_kubeadm_port_only_warns_on_operator_host(held_port: tuple[int, int]) -> None:
    port, pid = held_port
    func = _sys_node.ports_check([6443])
    fake = {6443: listeners()[port]}  # the child's listener, presented as the API server port
    outcome = run_check(func, config=make_config({}), tcp_listeners=fake, port=6443)
    assert outcome.status == "warn" and f"pid {pid}" in outcome.message
    node = run_check(func, config=make_config({"system.role": "node"}), tcp_listeners=fake, port=6443)
    assert node.status == "fail"


def test_no_ports_configured_skips() -> None:
    assert run_check(_sys_node.ports_check([])).status == "skip"
