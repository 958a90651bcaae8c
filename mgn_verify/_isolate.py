"""``--isolate``: each attempt of a sync check runs in a forked child process, killed at its timeout.

In-process, a sync check stuck in C code that holds the GIL (catastrophic regex backtracking)
cannot be stopped: only the run deadline's watchdog ends it, by ending the whole run. Isolated,
the check runs in a child forked from the worker thread; the worker waits for the child's
result until the attempt's deadline and then SIGKILLs it: the check is ``error`` ("timed out
after 1.0 s; its isolated process was killed") and the run goes on.

The outcome comes back pickled: status, message, details (a value that does not pickle becomes
its safe repr) and what the check printed (``_capture``). Limits, by design of fork:

- the check's fixtures are created in the parent before the fork, so they are shared and torn
  down by the parent as usual; the child works on copies (what it changes in them stays there),
  and anything else it sets up (a module global) lives and dies with its attempt;
- only the forking thread exists in the child: a check relying on threads the parent started
  (or on a lock one of them held) may hang there, until its timeout kills it;
- async checks stay in-process (on the supervised event loop); POSIX only.

The child leads a process group of its own: a Ctrl-C in a terminal reaches the foreground
group, not the child, and the parent decides what it means (the check is "interrupted", never
"killed by SIGINT"; processes the check starts keep the default signal dispositions). The
parent kills the child when it gives the attempt up, and the kernel kills it if the parent
dies. The whole group is killed when the attempt ends: processes the check started
(``subprocess.run(["sleep", "300"])``) end with it, at its timeout as after it returned.
What the child prints is captured afresh there (fixture output made in the parent stays in
the parent's capture), redacted before it is cut, and joins the parent's.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import select
import signal
import threading
from time import perf_counter
from typing import Any, NoReturn

from ._capture import CURRENT, Capture
from ._classify import CallOutcome, classify, describe_return
from ._fixtures import FixtureManager
from ._model import CheckSpec, Status
from ._text import describe_exception
from .config import Redactor
from .config.redact import safe_repr

__all__ = ["ISOLATION_GRACE", "IsolatedCall"]

#: The event loop's own deadline for an isolated attempt is this much later than the child's:
#: the worker kills the child first, the loop's deadline is only the backstop.
ISOLATION_GRACE = 2.0
_PR_SET_PDEATHSIG = 1


class IsolatedCall:
    """One attempt of ``spec``: ``run()`` on a pool worker, ``kill()`` from anywhere."""

    def __init__(self, spec: CheckSpec, fixtures: FixtureManager, timeout: float, redactor: Redactor) -> None:
        self._spec = spec
        self._fixtures = fixtures
        self._timeout = timeout
        self._redactor = redactor
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._given_up = False

    def run(self) -> CallOutcome:
        """The attempt's outcome; never raises (a pool job must not)."""
        deadline = perf_counter() + self._timeout
        spec = self._spec
        try:
            kwargs = dict(spec.params)
            if spec.argnames:
                kwargs.update(self._fixtures.resolve(spec.argnames, deadline))
        except BaseException as exc:  # a pool job must not raise
            return classify(spec, exc=exc)
        try:
            return self._fork_and_wait(kwargs, deadline)
        except (OSError, AttributeError) as exc:  # no fork here (not POSIX), no more processes
            return CallOutcome(Status.ERROR, f"could not start its isolated process: {describe_exception(exc)}")

    def _fork_and_wait(self, kwargs: dict[str, Any], deadline: float) -> CallOutcome:
        spec = self._spec
        read_fd, write_fd = os.pipe()
        try:
            with self._lock:
                if self._given_up:  # the attempt ended (timeout, Ctrl-C) while fixtures were made
                    return CallOutcome(Status.ERROR, "given up before its isolated process started")
                pid = os.fork()
                if pid == 0:
                    _child(spec, kwargs, read_fd, write_fd, self._redactor)
                with contextlib.suppress(OSError):  # the child does it too: no race either way
                    os.setpgid(pid, pid)
                self._pid = pid
            os.close(write_fd)
            write_fd = -1
            data, finished = _read_until(read_fd, deadline)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if not finished:
            self.kill()
        status = self._reap(pid)
        if not finished:
            return CallOutcome(Status.ERROR, f"timed out after {self._timeout:.1f} s; its isolated process was "
                               "killed", {"timeout_s": self._timeout})
        return _decode(data, status)

    def kill(self) -> None:
        """Give the attempt up: the child (if any) is killed with its process group, and none
        starts any more."""
        with self._lock:
            self._given_up = True
            if self._pid is not None:
                _kill_group(self._pid)

    def _reap(self, pid: int) -> int:
        """Wait for the child to end, kill what is left of its process group, then reap it under
        the lock ``kill`` takes: a reaped pid (a group id), which the system may reuse at once,
        is never signalled."""
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # ended, but still a zombie
        with self._lock:
            _kill_group(pid)   # the group's id stays reserved while its leader is unreaped
            _, status = os.waitpid(pid, 0)
            self._pid = None
        return status


def _kill_group(pid: int) -> None:
    """SIGKILL the child's process group (the check's processes), or the child if it has none
    yet."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything the child writes until EOF (``True``), or what came before the deadline."""
    chunks: list[bytes] = []
    while (left := deadline - perf_counter()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)
    return b"".join(chunks), False


def _decode(data: bytes, status: int) -> CallOutcome:
    try:
        value, message, details, output = pickle.loads(data)
        outcome = CallOutcome(Status(value), message, details)
    except Exception:
        return CallOutcome(Status.ERROR, f"its isolated process {_how_it_ended(status)} without a result")
    capture = CURRENT.get()  # the parent's capture of this check: the output joins it
    if capture is not None and output:
        capture.write(output)
    return outcome


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"was killed by signal {number}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


def _child(spec: CheckSpec, kwargs: dict[str, Any], read_fd: int, write_fd: int, redactor: Redactor) -> NoReturn:
    """Run the check, write the pickled outcome, and never return into the parent's code."""
    code = 0
    try:
        os.close(read_fd)
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)   # its own process group: out of the terminal's, killed as a whole
        _die_with_parent()
        capture = Capture()  # the parent's one (copied by fork) holds output the parent keeps
        CURRENT.set(capture)
        outcome = _call(spec, kwargs, redactor)
        output = capture.render(redactor.text)  # redacted before it is cut
        payload = pickle.dumps((outcome.status.value, outcome.message, _picklable(outcome.details), output))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def _call(spec: CheckSpec, kwargs: dict[str, Any], redactor: Redactor) -> CallOutcome:
    try:
        outcome = classify(spec, spec.func(**kwargs))
        if outcome.returned is not None and inspect.isawaitable(outcome.returned):
            import asyncio  # a sync wrapper of an async function: run it here, in the child

            outcome = classify(spec, asyncio.run(_awaited(outcome.returned)))
    except BaseException as exc:
        return classify(spec, exc=exc)
    if outcome.returned is not None:
        return describe_return(outcome.returned, redactor.text)
    return outcome


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _picklable(details: dict[str, Any]) -> dict[str, Any]:
    try:
        pickle.dumps(details)
        return details
    except Exception:
        return {str(key): value if _pickles(value) else safe_repr(value) for key, value in details.items()}


def _pickles(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _die_with_parent() -> None:
    """Linux: the child is killed if the run dies (even by SIGKILL), never orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
