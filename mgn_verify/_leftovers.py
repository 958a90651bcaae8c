"""Processes a check left running: stopped at the end of the run, and named.

A check that starts a process and is given up (its timeout, Ctrl-C, the run deadline) leaves
that process behind: ``subprocess.run(["sleep", "300"])`` in a stuck worker thread would
outlive ``mgn``. So the run remembers which children the process had when it started (the
watchdog, anything a plugin started while loading) and, when it ends however it ends, stops
every child started since that is still alive, and every descendant of those (``sh -c "sleep
300 & sleep 300"`` leaves two ``sleep``s that would be orphaned when ``sh`` ends): SIGTERM to
all of them at once, then SIGKILL after ``GRACE``. The supervisor names them in the run's
warnings (only for a run on the main thread, as a CLI run is: a run embedded in another program
leaves that program's children alone).

Linux only (``/proc``; elsewhere nothing is done). At the start only the children are read
(``/proc/self/task/*/children``, one small file per thread, or a scan of ``/proc/*/stat``); at
the end ``/proc`` is scanned once for the tree. A process is signalled through a pidfd once it
is verified to be the one scanned (same start time), so a pid that a stuck thread reaped and the
system reused is never hit, and one orphaned meanwhile is still hit. A child leading its own
process group (an ``--isolate`` attempt, ``start_new_session``) is stopped with its group. Not
found: descendants whose parent exited during the run (a double fork: they belong to init by
then, unless still in such a group), zombies (already ended).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from pathlib import Path
from time import perf_counter

__all__ = ["GRACE", "Children"]

#: Seconds a child has to end after SIGTERM before it gets SIGKILL.
GRACE = 0.5
_PROC = Path("/proc")
#: A bound on the processes stopped (a fork bomb's tree is not walked forever).
_MAX_TREE = 4096


class _Child:
    __slots__ = ("fd", "group", "name", "pid")

    def __init__(self, pid: int, name: str, group: bool, fd: int) -> None:
        self.pid, self.name, self.group, self.fd = pid, name, group, fd


class Children:
    """Create it when the run starts; ``stop_new()`` when it ends."""

    def __init__(self) -> None:
        self._me = os.getpid()
        self._before = set(_children(self._me).items())   # (pid, start time): pids get reused

    def stop_new(self, grace: float = GRACE) -> list[str]:
        """Stop the children started since and all their descendants, still alive;
        ``["sleep (pid 1234)", ...]``, parents first."""
        children = [child for pid, started in self._new_tree() if (child := _open(pid, started)) is not None]
        try:
            for child in children:  # held by pidfds: one orphaned meanwhile is still hit
                _signal(child, signal.SIGTERM)
            alive = _wait(children, grace)
            for child in alive:
                _signal(child, signal.SIGKILL)
        finally:
            for child in children:
                os.close(child.fd)
        return [f"{child.name} (pid {child.pid})" for child in children]

    def _new_tree(self) -> list[tuple[int, int]]:
        """``(pid, start time)`` of every child started since and of its descendants
        (one scan of ``/proc``; the children there before, as the watchdog, and theirs are left
        alone), parents before their children."""
        table: dict[int, list[tuple[int, int]]] = {}   # parent -> [(pid, start time)]
        for entry in _listdir(_PROC):
            if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0] != "Z":
                table.setdefault(stat[1], []).append((int(entry), stat[3]))
        found = [child for child in table.get(self._me, ()) if child not in self._before]
        for pid, _ in found:   # grows while it is walked: breadth first
            found.extend(table.get(pid, ()))
            if len(found) > _MAX_TREE:
                break
        return found


def _open(pid: int, started: int) -> _Child | None:
    """A pidfd of ``pid`` if it is still the process seen in the scan (same start time, alive;
    maybe orphaned since): a pid reused meanwhile is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    stat = _stat(pid)  # read after the pidfd is open: this is the process the pidfd holds
    if stat is None or stat[3] != started or stat[0] == "Z":
        os.close(fd)
        return None
    return _Child(pid, stat[4], stat[2] == pid, fd)


def _children(me: int) -> dict[int, int]:
    """Our children's pids and start times (zombies included: ``_open`` leaves them out)."""
    pids = _from_task_files(me)
    if pids is None:
        pids = [int(entry) for entry in _listdir(_PROC) if entry.isdigit()]
    found: dict[int, int] = {}
    for pid in pids:
        stat = _stat(pid)
        if stat is not None and stat[1] == me:
            found[pid] = stat[3]
    return found


def _from_task_files(me: int) -> list[int] | None:
    """Our children as the kernel lists them per thread; ``None`` without those files."""
    tasks = _PROC / str(me) / "task"
    tids = _listdir(tasks)
    if not tids:
        return None
    pids: list[int] = []
    for tid in tids:
        try:
            pids.extend(int(pid) for pid in (tasks / tid / "children").read_text().split())
        except FileNotFoundError:
            if (tasks / tid).exists():  # a kernel without the file (a thread that ended is fine)
                return None
        except (OSError, ValueError):
            return None
    return pids


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _stat(pid: int) -> tuple[str, int, int, int, str] | None:
    """``(state, ppid, process group, start time, name)`` from ``/proc/PID/stat``."""
    try:
        text = (_PROC / str(pid) / "stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    name, _, rest = text.partition(" (")[2].rpartition(")")   # the name may hold ") "
    fields = rest.split()
    try:
        return fields[0], int(fields[1]), int(fields[2]), int(fields[19]), name
    except (IndexError, ValueError):
        return None


def _signal(child: _Child, sig: signal.Signals) -> None:
    with contextlib.suppress(OSError):
        signal.pidfd_send_signal(child.fd, sig)
    if child.group:  # its own group (its children too); reserved while the leader is unreaped
        with contextlib.suppress(OSError):
            os.killpg(child.pid, sig)


def _wait(children: list[_Child], grace: float) -> list[_Child]:
    """The children still running after ``grace`` seconds (a pidfd is readable once it ended)."""
    alive = {child.fd: child for child in children}
    deadline = perf_counter() + grace
    while alive and (left := deadline - perf_counter()) > 0:
        try:
            ended, _, _ = select.select(list(alive), [], [], left)
        except OSError:
            break
        for fd in ended:
            alive.pop(fd)
    return list(alive.values())
