"""The one server lifecycle behind every lab simulator.

``ReopenableServer`` listens on a TCP port of 127.0.0.1 (or ``[::1]``) or on a Unix socket,
hands each accepted connection to ``handler`` on its own thread, and can take the listener
away and bring it back while the lab runs: that is how a ``*.down`` fault makes a daemon
disappear (the TCP port refuses connections, the Unix socket file is removed) and come back
on the *same* port or path when cleared. A watcher thread re-reads the ``is_down`` switch every
``watch_interval``; ``sync()`` applies it at once (``Lab.inject`` calls it through
``sync_faults``). ``stop()`` closes the listener and every live connection and joins every
thread it started.

``ServedSimulator`` is the facade the simulators share on top of it: ``start``/``stop``/
``sync_faults``, the context-manager protocol and the ``running``/``port`` accessors.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any, Self

__all__ = ["ConnectionHandler", "ReopenableServer", "ServedSimulator"]

#: ``handler(sock, client_address, listener)``: serve one accepted connection, then return.
#: The server closes ``sock`` afterwards; a handler that wraps it (TLS) calls ``track()``.
ConnectionHandler = Callable[[socket.socket, Any, socketserver.BaseServer], None]

_ACCEPT_POLL = 0.05  # how long stop() and a "down" may wait for the accept loop to notice


class _Accepting(socketserver.BaseServer):
    """The socketserver accept loop, with each connection handed to the owning server."""

    owner: ReopenableServer

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._spawn(request, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # client resets are normal in fault tests


class _TCPListener(_Accepting, socketserver.TCPServer):
    allow_reuse_address = True  # rebinding the same port right after a "down" must work
    request_queue_size = 64

    def __init__(self, owner: ReopenableServer, address: tuple[str, int]) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # e.g. the Host App's extra [::1] listener
        socketserver.TCPServer.__init__(self, address, socketserver.BaseRequestHandler)


class _UnixListener(_Accepting, socketserver.UnixStreamServer):
    request_queue_size = 64

    def __init__(self, owner: ReopenableServer, path: str) -> None:
        self.owner = owner
        socketserver.UnixStreamServer.__init__(self, path, socketserver.BaseRequestHandler)


class ReopenableServer:
    """Serve connections on ``host:port`` (port 0: a free one, kept across down/up cycles) or on
    the Unix socket ``unix_path`` (created with ``unix_mode``, removed while down and at stop)."""

    def __init__(
        self,
        handler: ConnectionHandler,
        *,
        is_down: Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | None = None,
        unix_mode: int | None = None,
        name: str = "lab-server",
        watch_interval: float = 0.02,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.unix_mode = unix_mode
        self.name = name
        self._is_down = is_down
        self._watch_interval = watch_interval
        self._lock = threading.Lock()  # guards the listener and the connection table
        self._sync_lock = threading.RLock()  # serialises start/stop/sync
        self._listener: _TCPListener | _UnixListener | None = None
        self._serve_thread: threading.Thread | None = None
        self._watch_thread: threading.Thread | None = None
        self._connections: dict[threading.Thread, socket.socket] = {}
        # Set while stopping: handlers that sleep (slow faults) wait on this instead.
        self.stopping = threading.Event()
        self._running = False

    # -- state ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Started and not stopped (the listener may still be away for a "down" fault)."""
        return self._running

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def connection_count(self) -> int:
        """Connections currently being served."""
        with self._lock:
            return len(self._connections)

    def down(self) -> bool:
        return self._is_down is not None and self._is_down()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with self._sync_lock:
            if self._running:
                return
            self.stopping.clear()
            if self.down():
                self._reserve_port()  # stay away, but know the address it will come back on
            else:
                self._open()
            self._running = True
            if self._is_down is not None:
                self._watch_thread = threading.Thread(
                    target=self._watch, name=f"{self.name}-watch", daemon=True
                )
                self._watch_thread.start()

    def stop(self) -> None:
        with self._sync_lock:
            if not self._running:
                return
            self._running = False
            self.stopping.set()
            watcher, self._watch_thread = self._watch_thread, None
        if watcher is not None:
            watcher.join()
        self._close()  # outside the lock: sync() is a no-op now that _running is False

    def sync(self) -> None:
        """Close or reopen the listener to match the ``is_down`` switch, right now."""
        if self._is_down is None:
            return
        with self._sync_lock:
            if not self._running:
                return
            down = self._is_down()
            if down and self._listener is not None:
                self._close()
            elif not down and self._listener is None:
                with contextlib.suppress(OSError):  # port taken meanwhile: retry next tick
                    self._open()

    def track(self, sock: socket.socket) -> None:
        """Close ``sock`` (instead of the accepted one) when this connection must be dropped."""
        with self._lock:
            self._connections[threading.current_thread()] = sock

    # -- internals -----------------------------------------------------------------------------

    def _reserve_port(self) -> None:
        if self.unix_path is not None or self.port != 0:
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((self.host, 0))
            self.port = int(probe.getsockname()[1])

    def _open(self) -> None:
        listener: _TCPListener | _UnixListener
        if self.unix_path is not None:
            self._remove_socket_file()  # a stale file from a crashed run would make bind() fail
            listener = _UnixListener(self, self.unix_path)
            if self.unix_mode is not None:
                os.chmod(self.unix_path, self.unix_mode)
        else:
            tcp = _TCPListener(self, (self.host, self.port))
            self.port = int(tcp.server_address[1])
            listener = tcp
        thread = threading.Thread(
            target=listener.serve_forever,
            kwargs={"poll_interval": _ACCEPT_POLL},
            name=f"{self.name}-accept",
            daemon=True,
        )
        with self._lock:
            self._listener = listener
            self._serve_thread = thread
        thread.start()

    def _close(self) -> None:
        """Close the listener and every live connection, then join their threads."""
        with self._lock:
            listener, thread = self._listener, self._serve_thread
            self._listener = self._serve_thread = None
        if listener is not None and thread is not None:
            with contextlib.suppress(OSError):
                # Refuse new connections right now, not after the accept loop's next poll.
                listener.socket.shutdown(socket.SHUT_RDWR)
            listener.shutdown()
            thread.join()
            listener.server_close()
            self._remove_socket_file()
        with self._lock:
            conns = list(self._connections.items())
        for _, sock in conns:
            with contextlib.suppress(OSError):
                # Base-class shutdown works on the raw fd even when ``sock`` is an SSLSocket; it
                # wakes a handler blocked in recv(), which then returns and closes the socket.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for conn_thread, _ in conns:
            if conn_thread is not threading.current_thread():
                conn_thread.join(timeout=5)

    def _remove_socket_file(self) -> None:
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    def _watch(self) -> None:
        while not self.stopping.wait(self._watch_interval):
            self.sync()

    def _spawn(self, request: socket.socket, client_address: Any, listener: _Accepting) -> None:
        if self.stopping.is_set() or self.down():
            request.close()  # accepted in the instant before the listener went away
            return
        thread = threading.Thread(
            target=self._serve,
            args=(request, client_address, listener),
            name=f"{self.name}-conn",
            daemon=True,
        )
        with self._lock:
            self._connections[thread] = request
        thread.start()

    def _serve(self, request: socket.socket, client_address: Any, listener: _Accepting) -> None:
        try:
            self.handler(request, client_address, listener)
        except (OSError, ValueError):
            pass  # resets, handshake failures and sockets closed by a "down" or stop()
        finally:
            with contextlib.suppress(OSError):
                request.close()
            with self._lock:
                self._connections.pop(threading.current_thread(), None)


class ServedSimulator:
    """Lifecycle facade of a simulator that serves through ``self._server``."""

    _server: ReopenableServer

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def sync_faults(self) -> None:
        """Apply this simulator's ``*.down`` fault now instead of at the watcher's next tick."""
        self._server.sync()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def port(self) -> int:
        return self._server.port
