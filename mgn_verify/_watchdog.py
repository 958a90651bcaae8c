"""The last resort: a watchdog process that ends the run when Python itself cannot.

A sync check stuck in C code that holds the GIL (catastrophic regex backtracking) freezes every
thread of the process: no timeout, no signal handler, no supervisor can run. So the hard edge
of the run deadline is enforced from outside: a tiny child process (this file run as a script,
stdlib only, ``python -I -S``) sleeps until the deadline plus a grace. If the run has not ended
by then, it prints one line naming the running checks and SIGKILLs the run: exit status 137 in
a shell (``-9`` from ``subprocess``), and no report is written (nothing in the process can run).

Why not ``faulthandler.dump_traceback_later(exit=True)``, which needs no GIL either: it prints
every thread's traceback rather than one line, exits 1 (the "a check failed" code), and cannot
name the check.

Cost when it does not fire: one process start per run, off the run's critical path, and no
syscall per check: the scheduler writes the running checks into memory shared with the child
(an ``mmap``), only when what the message would say changes; the child reads it only when it
fires. The firing time lives there too: once the checks are over, ``extend`` gives the end of
the run (building the report, ``mgn_run_finish`` hooks) a fresh grace of its own. It never
outlives the run: it exits on EOF of its stdin pipe, which the kernel closes however the run
ends (even by SIGKILL), and checks that its parent is still alive.
"""

from __future__ import annotations

import mmap
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from itertools import islice

__all__ = ["FINISH_GRACE", "HARD_GRACE", "Watchdog"]

#: Seconds past the run deadline before the watchdog kills: the soft stop (which ends the run
#: at most ``_supervisor.FORCE_AFTER`` = 1.5 s after the deadline) has them to finish.
HARD_GRACE = 3.5
#: Seconds ``extend`` gives the end of a run whose checks are over: the report, the hooks.
FINISH_GRACE = 10.0
_SIZE = 4096
# The board: the firing time (a ``time.monotonic()`` double), the message's length, the message.
_FIRE = struct.Struct("<d")
_LENGTH_AT = _FIRE.size
_TEXT_AT = _LENGTH_AT + 4
_SHOWN = 5          # running checks named at most
_CLOSE_WAIT_S = 2.0


class Watchdog:
    """``show()`` is the scheduler's ``RunningBoard``; ``close()`` disarms (always call it)."""

    def __init__(self, deadline_s: float, redact: Callable[[str], str]) -> None:
        self._deadline_s = deadline_s
        self._redact = redact
        self._names: dict[str, str] = {}   # check id -> its redacted form, computed once
        self._board: mmap.mmap | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._shown: tuple[tuple[str, ...], int] | None = None   # what the board says now

    def start(self) -> Watchdog:
        """Start the child; without a usable interpreter or shared memory, run without one."""
        if not os.path.isfile(__file__):  # a zipped install: no script to run
            return self
        try:
            fd = _shared_memory()
            try:
                self._board = mmap.mmap(fd, _SIZE)
                self.extend(self._deadline_s + HARD_GRACE)
                self.show(())
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", __file__, str(os.getpid()), str(fd)],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(fd,),
                    start_new_session=True)  # a terminal's Ctrl-C is the run's business, not its
            finally:
                os.close(fd)
        except OSError:
            self.close()
            return self
        _Forks.pipe_fd = self._proc.stdin.fileno() if self._proc.stdin else None
        return self

    def show(self, running: Collection[str]) -> None:
        """The running checks, oldest first; written only when the message would change."""
        board = self._board
        if board is None:
            return
        shown = (tuple(islice(running, _SHOWN)), len(running))
        if shown == self._shown:
            return
        self._shown = shown
        data = self._message(*shown).encode("utf-8", "replace")[:_SIZE - _TEXT_AT]
        board[_TEXT_AT:_TEXT_AT + len(data)] = data
        board[_LENGTH_AT:_TEXT_AT] = len(data).to_bytes(4, "little")

    def extend(self, seconds: float = FINISH_GRACE) -> None:
        """Fire ``seconds`` from now instead (called once the checks are over: the rest of the
        run gets a fresh grace, not what the stop left of ``HARD_GRACE``)."""
        if self._board is not None:
            _FIRE.pack_into(self._board, 0, time.monotonic() + seconds)

    def postpone(self, seconds: float) -> None:
        """The run deadline moved ``seconds`` later (a blocked event loop cost that much): so
        does the firing time."""
        board = self._board
        if board is not None:
            _FIRE.pack_into(board, 0, _fire_at(board) + seconds)

    def close(self) -> None:
        """Disarm: the child sees EOF and exits; reaped here, so no zombie and no warning."""
        proc, self._proc = self._proc, None
        _Forks.pipe_fd = None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(_CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._board is not None:
            self._board.close()
            self._board = None

    def _message(self, oldest: tuple[str, ...], count: int) -> str:
        head = f"mgn: error: run deadline of {self._deadline_s:g} s exceeded"
        if not oldest:
            return f"{head} (something holds the interpreter); stopping\n"
        names = [self._name(cid) for cid in oldest]
        more = f" and {count - _SHOWN} more" if count > _SHOWN else ""
        which = names[0] if len(names) == 1 else f"one of {', '.join(names)}{more}"
        return f"{head} while {which} was running (it holds the interpreter); stopping\n"

    def _name(self, cid: str) -> str:
        name = self._names.get(cid)
        if name is None:
            name = self._names[cid] = self._redact(cid)
        return name


class _Forks:
    """A forked child (``--isolate``, a check calling ``os.fork``) must not hold the watchdog's
    pipe open, or the watchdog would outlive a killed run: it gets /dev/null in its place."""

    pipe_fd: int | None = None

    @staticmethod
    def after_in_child() -> None:
        fd = _Forks.pipe_fd
        if fd is not None:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd, inheritable=False)
            os.close(null)


def _shared_memory() -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("mgn-watchdog")
    else:  # pragma: no cover - not Linux
        import tempfile

        with tempfile.TemporaryFile() as handle:
            fd = os.dup(handle.fileno())
    os.ftruncate(fd, _SIZE)
    return fd


def _fire_at(board: mmap.mmap) -> float:
    """The firing time, read until two reads agree (the parent may be writing it)."""
    value = _FIRE.unpack_from(board, 0)[0]
    while (again := _FIRE.unpack_from(board, 0)[0]) != value:
        value = again
    return float(value)


def _watch(parent: int, board_fd: int) -> int:
    """The child: wait for EOF (disarmed) or the firing time, then name the checks and kill."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    board = mmap.mmap(board_fd, _SIZE, access=mmap.ACCESS_READ)
    stdin = sys.stdin.fileno()
    while (left := _fire_at(board) - time.monotonic()) > 0:
        readable, _, _ = select.select([stdin], [], [], min(left, 1.0))
        if os.getppid() != parent or (readable and not os.read(stdin, 4096)):
            return 0
    size = min(int.from_bytes(board[_LENGTH_AT:_TEXT_AT], "little"), _SIZE - _TEXT_AT)
    os.write(2, board[_TEXT_AT:_TEXT_AT + size] or b"mgn: error: run deadline exceeded; stopping\n")
    os.kill(parent, signal.SIGKILL)
    return 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Forks.after_in_child)

if __name__ == "__main__":
    sys.exit(_watch(int(sys.argv[1]), int(sys.argv[2])))
