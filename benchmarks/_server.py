"""A local delay server for the benchmarks: 127.0.0.1 only, one asyncio loop, bounded lifetime.

The protocol is chosen per connection by its first line, so one server serves every benchmark:

* ``PING <ms>\\n``  → waits ``<ms>`` milliseconds, answers ``PONG\\n`` and closes (TCP check).
* ``SILENT\\n``     → accepts and never answers; the connection stays open until the client
  closes it or the server stops (hang tolerance).
* ``GET /<ms> HTTP/1.1`` (plus headers) → waits ``<ms>`` ms and answers ``200 ok``
  (HTTP check; ``Connection: close``).

Run it as a subprocess (``python _server.py [--lifetime S]``): it prints ``PORT <n>`` on
stdout when ready and exits on its own after ``--lifetime`` seconds or when stdin closes, so
nothing outlives the benchmark even if the parent dies. ``DelayServer`` wraps that.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
from types import TracebackType

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        line = await reader.readline()
        if line.startswith(b"PING"):
            parts = line.split()
            await asyncio.sleep(int(parts[1]) / 1000 if len(parts) > 1 else 0)
            writer.write(b"PONG\n")
            await writer.drain()
        elif line.startswith(b"SILENT"):
            while await reader.read(4096):  # hold the connection until the client gives up
                pass
        elif line.startswith(b"GET "):
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                del header
            path = line.split()[1].decode() if len(line.split()) > 1 else "/0"
            delay_ms = int(path.strip("/") or 0) if path.strip("/").isdigit() else 0
            await asyncio.sleep(delay_ms / 1000)
            writer.write(HTTP_OK)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve(lifetime: float) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=4096, limit=65536)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def watch_stdin() -> None:  # the parent died or closed our stdin: stop
        sys.stdin.read()
        def stop() -> None:
            if not stdin_closed.done():
                stdin_closed.set_result(None)

        loop.call_soon_threadsafe(stop)

    threading.Thread(target=watch_stdin, daemon=True).start()
    async with server:
        await asyncio.wait([stdin_closed], timeout=lifetime)


class DelayServer:
    """Context manager: start the server in a subprocess; ``.port`` is its TCP port."""

    def __init__(self, lifetime: float = 900.0) -> None:
        self.lifetime = lifetime
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayServer:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "--lifetime", str(self.lifetime)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            self._proc.kill()
            raise RuntimeError(f"delay server did not start: {first!r}")
        self.port = int(first[1])
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lifetime", type=float, default=900.0, help="exit after this many seconds")
    args = parser.parse_args()
    asyncio.run(_serve(args.lifetime))


if __name__ == "__main__":
    main()
