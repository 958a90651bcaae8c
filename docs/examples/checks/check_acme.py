"""Example checks. Run them: mgn verify acme --checks-dir docs/examples/checks"""

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator

from mgn_verify import Config, check, fixture, parametrize, skip, warn


@check(id="acme.tmp.writable", title="Temp dir is writable", requires=["system.disk.free"],
       severity="critical", timeout=5, retries=0, tags=["acme"], remediation="chmod 1777 /tmp")
def check_tmp_writable(config: Config) -> None:
    path = tempfile.gettempdir()
    assert os.access(path, os.W_OK), f"{path} is not writable"


@fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP listener: created once, on first use; closed at the end of the run."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


@parametrize("family", ["ipv4", "ipv6"])
@check(id="acme.loopback.connect", title="Loopback accepts connections", severity="warning",
       tags=["acme"], remediation="check the firewall rules on lo")
async def check_loopback(family: str, listener: socket.socket) -> dict[str, object]:
    if family == "ipv6":
        if not socket.has_ipv6:
            skip("this Python has no IPv6 support")
        warn("the example listener is IPv4 only; IPv6 was not probed")
    host, port = listener.getsockname()[:2]
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()
    return {"message": f"connected to {host}:{port}", "port": port}


def check_arithmetic() -> None:  # in a check_*.py file, any check_* function is a check
    assert 1 + 1 == 2
