"""``mgn lab up|down|status``: run the GuildNet lab from the command line.

``up`` runs the lab in the foreground until Ctrl-C or SIGTERM and prints the config path with
the command that uses it. ``up --detach`` re-runs ``python -m mgn_verify.lab up`` as a detached
process (new session, output in ``lab.log``), waits until the lab is up and exits 0. Either
way the running lab records itself in ``<state-dir>/lab.json`` (default
``~/.metaguildnet/lab``), which ``down`` and ``status`` read.

The group is exported as ``lab`` so the main CLI can mount it:
``from mgn_verify.lab.cli import lab``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from mgn_verify.lab.control import CONTROL_SOCKET, ControlError, ControlServer, request

from .._exitcodes import ExitCode

__all__ = ["LOG_FILENAME", "STATE_FILENAME", "default_state_dir", "lab"]

STATE_FILENAME = "lab.json"
LOG_FILENAME = "lab.log"
_START_TIMEOUT = 60.0
_POLL = 0.1


def default_state_dir() -> Path:
    return Path.home() / ".metaguildnet" / "lab"


# -- the state file and the process it names ------------------------------------------------


def _proc_starttime(pid: int) -> str | None:
    """The process start time from /proc (clock ticks), or None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces; everything after the last ')' is space-separated.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _alive(state: dict[str, Any]) -> bool:
    """Is the process that wrote ``state`` still running (and not a recycled pid)?"""
    pid = int(state["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    # A detached lab whose parent never reaped it lingers as a zombie: it is gone.
    if _is_zombie(pid):
        return False
    recorded = state.get("starttime")
    return recorded is None or _proc_starttime(pid) in (None, recorded)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATE_FILENAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "pid" in data else None


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE_FILENAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    # Atomic: ``up --detach`` polls for this file and must never read half of it.
    os.replace(tmp, state_dir / STATE_FILENAME)


def _remove_state(state_dir: Path, pid: int | None = None) -> None:
    state = _read_state(state_dir)
    if pid is None or (state is not None and int(state["pid"]) == pid):
        (state_dir / STATE_FILENAME).unlink(missing_ok=True)


def _running_state(state_dir: Path) -> dict[str, Any] | None:
    """The state of a live lab; a stale file (dead process) is removed."""
    state = _read_state(state_dir)
    if state is None:
        return None
    if _alive(state):
        return state
    _remove_state(state_dir)
    return None


class _StateError(click.ClickException):
    """The request conflicts with the lab's state: exit 2, like every usage error."""

    exit_code = int(ExitCode.USAGE_ERROR)


def _validate_faults(faults: tuple[str, ...]) -> None:
    from mgn_verify.lab import FaultSet, UnknownFaultError, known_faults

    try:
        FaultSet(known_faults(), faults)
    except UnknownFaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None


def _control_path(workdir: Path) -> Path:
    """The control socket in the lab's workdir, or in a short temp dir when the workdir's path
    is too long for a Unix socket (107 bytes)."""
    path = workdir / CONTROL_SOCKET
    if len(os.fsencode(path)) <= 100:
        return path
    import tempfile

    return Path(tempfile.mkdtemp(prefix="mgn-lab-ctl-")) / CONTROL_SOCKET


def _how_to_use(config_path: str) -> str:
    return f"use it:  mgn verify all --config {config_path}"


# -- commands -----------------------------------------------------------------------------

_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="MGN_LAB_STATE_DIR",
    help="Where the running lab records itself [default: ~/.metaguildnet/lab].",
)


@click.group(name="lab")
def lab() -> None:
    """Run the GuildNet lab: simulated Kubernetes, Host App, RethinkDB, tailscaled and Headscale."""


@lab.command()
@click.option("--fault", "faults", multiple=True, metavar="NAME", help="Start with this fault (repeatable).")
@click.option("--detach", is_flag=True, help="Run in the background and return once the lab is up.")
@click.option("--bare", is_flag=True,
              help="A cluster without GuildNet (no CRDs, operator or RethinkDB) and a Host App with no "
                   "cluster registered: what `mgn install` starts from.")
@click.option("--cluster", "extra", multiple=True, metavar="ID",
              help="One more cluster, with its own Kubernetes API and RethinkDB (repeatable; the first is 'lab').")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Working directory for certificates, sockets and the config [default: a temp dir].",
)
@_state_dir_option
def up(faults: tuple[str, ...], detach: bool, bare: bool, extra: tuple[str, ...], workdir: Path | None,
       state_dir: Path | None) -> None:
    """Start the lab and print the path of its mgn config file."""
    state_dir = (state_dir or default_state_dir()).expanduser().resolve()
    existing = _running_state(state_dir)
    if existing is not None:
        raise _StateError(
            f"a lab is already running (pid {existing['pid']}, config {existing.get('config_path')}); "
            "stop it with `mgn lab down`"
        )
    _validate_faults(faults)
    clusters = _cluster_ids(extra)
    if detach:
        _detach(faults, workdir, state_dir, bare=bare, clusters=clusters)
    else:
        _foreground(faults, workdir, state_dir, bare=bare, clusters=clusters)


def _cluster_ids(extra: tuple[str, ...]) -> tuple[str, ...] | None:
    """``lab`` plus the ``--cluster`` ids (None: the default single cluster)."""
    if not extra:
        return None
    ids = ("lab", *extra)
    for cid in extra:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", cid):
            raise click.UsageError(f"--cluster {cid!r}: use a DNS label (lowercase letters, digits, '-')")
    if len(set(ids)) != len(ids):
        raise click.UsageError(f"--cluster: each id once, and not 'lab' (got: {', '.join(extra)})")
    return ids


def _foreground(faults: tuple[str, ...], workdir: Path | None, state_dir: Path, *, bare: bool = False,
                clusters: tuple[str, ...] | None = None) -> None:
    from mgn_verify.lab import Lab

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # signal.signal only works on the main thread; elsewhere the default actions apply.
    on_main = threading.current_thread() is threading.main_thread()
    # SIGTERM (``mgn lab down``) during startup is remembered and honoured once the lab is up.
    previous_term = signal.signal(signal.SIGTERM, request_stop) if on_main else None
    previous_int = None
    lab_ = Lab(faults=faults, workdir=workdir, bare=bare, clusters=clusters)
    try:
        try:
            lab_.start()  # Ctrl-C in here aborts the start; Lab.start cleans up after itself
        except Exception as exc:
            raise click.ClickException(f"the lab failed to start: {exc}") from exc
        if on_main:
            # From now on Ctrl-C is a request to stop, not an exception in the middle of output.
            previous_int = signal.signal(signal.SIGINT, request_stop)
        control: ControlServer | None = None
        try:
            summary = lab_.summary()
            state = {
                "pid": os.getpid(),
                "starttime": _proc_starttime(os.getpid()),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **summary,
            }

            def record_faults() -> None:  # `mgn lab status` shows what `mgn lab fault` changed
                _write_state(state_dir, {**state, "faults": sorted(lab_.faults)})

            control = ControlServer(lab_, _control_path(lab_.workdir), on_change=record_faults)
            state["control_socket"] = str(control.path)
            _write_state(state_dir, state)
            click.echo(f"mgn lab is up (pid {os.getpid()}){_bare_note(bare)}")
            click.echo(f"config:  {summary['config_path']}")
            click.echo(_how_to_use(summary["config_path"]))
            click.echo("Press Ctrl-C to stop.", err=True)
            with contextlib.suppress(KeyboardInterrupt):
                # Short waits keep the main thread responsive to the signal handlers.
                while not stop.wait(0.5):
                    pass
        finally:
            if control is not None:
                control.close()
            lab_.stop()
            _remove_state(state_dir, os.getpid())
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous_term)
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)
    click.echo("mgn lab stopped")


def _bare_note(bare: bool) -> str:
    return "; bare: GuildNet is not installed, no cluster is registered" if bare else ""


def _detach(faults: tuple[str, ...], workdir: Path | None, state_dir: Path, *, bare: bool = False,
            clusters: tuple[str, ...] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILENAME
    command = [sys.executable, "-m", "mgn_verify.lab", "up", "--state-dir", str(state_dir)]
    command += [f"--fault={name}" for name in faults]
    if bare:
        command.append("--bare")
    command += [f"--cluster={cid}" for cid in (clusters or ())[1:]]
    if workdir is not None:
        command += ["--workdir", str(workdir.expanduser().resolve())]
    env = dict(os.environ)
    # The child must import this very copy of mgn_verify, installed or not.
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # lab.log is a file: show lines as they happen
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # survives this shell, gets no Ctrl-C from it
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        state = _read_state(state_dir)
        if state is not None and int(state["pid"]) == process.pid:
            # Detached on purpose: don't let Popen.__del__ warn about (or later reap) the child.
            process.returncode = 0
            click.echo(f"mgn lab is up in the background (pid {process.pid}, log {log_path}){_bare_note(bare)}")
            click.echo(f"config:  {state['config_path']}")
            click.echo(_how_to_use(state["config_path"]))
            click.echo("stop it with: mgn lab down")
            return
        if process.poll() is not None:
            break
        time.sleep(_POLL)
    else:
        process.terminate()
        process.wait()
    tail = log_path.read_text(errors="replace").splitlines()[-15:]
    raise click.ClickException("the lab did not start; last lines of the log:\n" + "\n".join(tail))


@lab.command()
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait after SIGTERM.")
@_state_dir_option
def down(timeout: float, state_dir: Path | None) -> None:
    """Stop the lab started by `mgn lab up` (detached or in another terminal)."""
    state_dir = (state_dir or default_state_dir()).expanduser().resolve()
    state = _read_state(state_dir)
    if state is None:
        click.echo(f"No lab is running (no {STATE_FILENAME} in {state_dir}).")
        return
    pid = int(state["pid"])
    if not _alive(state):
        _remove_state(state_dir)
        click.echo(f"No lab is running (removed stale state of pid {pid}).")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(state) and time.monotonic() < deadline:
        time.sleep(_POLL)
    if _alive(state):
        os.kill(pid, signal.SIGKILL)
        click.echo(f"the lab (pid {pid}) ignored SIGTERM for {timeout:g}s; killed it", err=True)
    _remove_state(state_dir)
    click.echo(f"mgn lab stopped (pid {pid})")


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
@_state_dir_option
def status(as_json: bool, state_dir: Path | None) -> None:
    """Show the running lab; exit status 1 when none is running."""
    state_dir = (state_dir or default_state_dir()).expanduser().resolve()
    state = _running_state(state_dir)
    if as_json:
        click.echo(json.dumps({"running": state is not None, **(state or {})}, indent=2))
    elif state is None:
        click.echo("No lab is running.")
    else:
        click.echo(f"mgn lab is running (pid {state['pid']}, since {state.get('started_at', '?')})")
        for key in ("config_path", "workdir", "kubernetes", "hostapp", "rethinkdb", "tailscale", "headscale"):
            click.echo(f"  {key + ':':<13}{state.get(key)}")
        click.echo(f"  {'faults:':<13}{', '.join(state.get('faults') or []) or 'none'}")
        if state.get("bare"):
            click.echo(f"  {'bare:':<13}yes (GuildNet not installed when the lab started)")
        click.echo(_how_to_use(str(state.get("config_path"))))
    if state is None:
        click.get_current_context().exit(1)


# -- faults of a running lab ------------------------------------------------------------------


def _control(state_dir: Path | None, op: str, name: str | None = None, cluster: str | None = None
             ) -> dict[str, Any]:
    state_dir = (state_dir or default_state_dir()).expanduser().resolve()
    state = _running_state(state_dir)
    if state is None:
        raise click.ClickException("no lab is running; start one with `mgn lab up --detach`")
    if not state.get("control_socket"):
        raise click.ClickException(f"the running lab (pid {state['pid']}) has no control socket")
    try:
        return request(state["control_socket"], op, name, cluster)
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None


@lab.group()
def fault() -> None:
    """Inject, clear and list faults of the running lab (takes effect on the next request)."""


_cluster_option = click.option("--cluster", metavar="ID", default=None,
                               help="The lab cluster the fault applies to (default: the first).")


def _check_fault_names(names: tuple[str, ...]) -> None:
    """A typo is a usage error (exit 2) before anything changes."""
    from mgn_verify.lab import FaultSet, UnknownFaultError, known_faults

    try:
        FaultSet(known_faults(), names)
    except UnknownFaultError as exc:
        raise click.UsageError(str(exc)) from None


@fault.command("add")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@_cluster_option
@_state_dir_option
def fault_add(names: tuple[str, ...], cluster: str | None, state_dir: Path | None) -> None:
    """Inject faults into the running lab (all of them, or none when a name is unknown)."""
    _check_fault_names(names)
    reply: dict[str, Any] = {}
    for name in names:
        reply = _control(state_dir, "inject", name, cluster)
    click.echo(f"active faults: {', '.join(reply.get('faults') or []) or 'none'}")


@fault.command("clear")
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option("--all", "clear_all", is_flag=True, help="Clear every active fault.")
@_cluster_option
@_state_dir_option
def fault_clear(names: tuple[str, ...], clear_all: bool, cluster: str | None, state_dir: Path | None) -> None:
    """Clear faults of the running lab (NAME..., or --all)."""
    if not names and not clear_all:
        raise click.UsageError("name the faults to clear, or pass --all")
    _check_fault_names(names)
    reply: dict[str, Any] = _control(state_dir, "clear_all") if clear_all else {}
    for name in names:
        reply = _control(state_dir, "clear", name, cluster)
    click.echo(f"active faults: {', '.join(reply.get('faults') or []) or 'none'}")


@fault.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print active and known faults as JSON.")
@_state_dir_option
def fault_list(as_json: bool, state_dir: Path | None) -> None:
    """List the faults a lab knows, marking the active ones (works without a running lab)."""
    state_dir = (state_dir or default_state_dir()).expanduser().resolve()
    if _running_state(state_dir) is not None:
        reply = _control(state_dir, "list")
        active, known = set(reply.get("faults") or []), list(reply.get("known") or [])
    else:
        from mgn_verify.lab import known_faults

        active, known = set(), sorted(known_faults())
    if as_json:
        click.echo(json.dumps({"active": sorted(active), "known": known}, indent=2))
        return
    for name in known:
        click.echo(f"{'*' if name in active else ' '} {name}")
    click.echo(f"\n{len(active)} active of {len(known)} known" + ("" if active or _running_state(state_dir)
                                                               else " (no lab is running)"))
