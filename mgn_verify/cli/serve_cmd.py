"""``mgn verify serve``: run the selection every interval and serve its latest state over HTTP
(``/healthz``, ``/report``, ``/metrics``, ``/``). Loaded only when the subcommand is named; the
work is in ``mgn_verify.serve``."""

from __future__ import annotations

import click

from .._exceptions import UsageError
from .._exitcodes import ExitCode
from ._options import error, loading_options, parse_duration, parse_overrides, run_or_exit
from ._request import RunRequest, prepare
from ._signals import SignalScope

__all__ = ["serve"]

_EPILOG = """\b
Endpoints:
  /healthz   200 when nothing failed or errored in the latest run, else 503
             (503 "no run finished yet" until the first run ends); body: the verdict
  /report    the latest JSON report (as --json writes it)
  /metrics   Prometheus text format: mgn_check_status{check,layer,status} (1 for the
             current status, 0 for the others), mgn_check_duration_seconds,
             mgn_run_duration_seconds, mgn_runs_total, mgn_last_run_timestamp_seconds, ...
  /          a status page (refreshes itself)

\b
Runs are not recorded in the history database (one per interval would crowd it).

\b
Exit codes:
    2  it could not start (usage, configuration, plugin error, address in use)
  130  stopped by Ctrl-C or SIGTERM, its normal end (systemd: SuccessExitStatus=130)"""


@click.command("serve", epilog=_EPILOG)
@click.argument("layers", nargs=-1, metavar="[all|LAYER...]")
@click.option("--listen", metavar="HOST:PORT",
              help="Where to listen [config: serve.listen, 127.0.0.1:9797]; port 0 picks a free one. "
                   "An address other than loopback needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --listen address that other machines can reach (consider --silent).")
@click.option("--interval", metavar="DURATION",
              help="Time from one run's start to the next, e.g. 30s, 5m [config: serve.interval, 60s]. "
                   "A run never overlaps the previous one.")
@click.option("--silent", is_flag=True,
              help="Serve only /healthz's status code, with an empty body; every other path is 404.")
@click.option("--check", "checks", multiple=True, metavar="GLOB", help="Only checks whose id matches.")
@click.option("--skip", "skips", multiple=True, metavar="GLOB", help="Leave out checks whose id matches.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only checks with this tag.")
@loading_options
@click.option("--concurrency", type=click.IntRange(1, 4096), help="Checks running at once [config: 32].")
@click.option("--timeout", type=click.FloatRange(0.001), help="Default seconds per check attempt [10].")
@click.option("--ignore-preflight-errors", "ignore", multiple=True, metavar="ID[,ID...]|all",
              help="Waive failures of these checks (globs allowed).")
@click.option("--lab", is_flag=True, help="Start the GuildNet lab in-process and verify against it.")
@click.option("--fault", "faults", multiple=True, metavar="NAME", help="With --lab: inject this lab fault.")
def serve(layers: tuple[str, ...], listen: str | None, allow_remote: bool, interval: str | None, silent: bool,
          checks: tuple[str, ...], skips: tuple[str, ...], tags: tuple[str, ...], plugins: tuple[str, ...],
          checks_dir: tuple[str, ...], config_path: str | None, overrides: tuple[str, ...],
          concurrency: int | None, timeout: float | None, ignore: tuple[str, ...], lab: bool,
          faults: tuple[str, ...]) -> None:
    """Run the checks of all layers, or of the LAYERs named, every interval, and serve the
    latest results over HTTP: for load balancers, Prometheus and people."""
    settings = parse_overrides(overrides)
    if concurrency is not None:
        settings["verify.concurrency"] = (concurrency, False)
    if timeout is not None:
        settings["verify.timeout"] = (float(timeout), False)
    selection = tuple(layers) or ("all",)
    request = RunRequest(layers, checks, skips, tags, None, plugins, checks_dir, config_path, settings,
                         ignore=ignore, selection=selection, load_selection=selection)

    def body() -> int:
        if faults and not lab:
            raise UsageError("--fault needs --lab")
        if lab and config_path:
            raise UsageError("--lab brings its own config: leave out --config (use --set to change a setting)")
        every = parse_duration(interval) if interval is not None else None
        if every is not None and every <= 0:
            raise UsageError(f"--interval {interval!r}: must be more than 0 s")
        if lab:
            from .verify import _with_lab

            return _with_lab(faults, lambda path: _serve(request, path, listen, allow_remote, every, silent))
        return _serve(request, config_path, listen, allow_remote, every, silent)

    run_or_exit(body)


def _serve(request: RunRequest, config_path: str | None, listen: str | None, allow_remote: bool,
           every: float | None, silent: bool) -> int:
    from ..serve.address import resolve_listen
    from ..serve.runner import serve_runs
    from ..serve.server import make_server
    from ..serve.state import ServeState

    with SignalScope() as signals:
        try:
            with signals.raising():  # a plugin stuck while importing must still end
                prepared = prepare(request, config_path=config_path)
        except KeyboardInterrupt:
            error("interrupted while loading plugins and configuration")
            return int(ExitCode.INTERRUPTED)
        config = prepared.loaded.config
        source, text = ("--listen", listen) if listen is not None else ("serve.listen", str(config["serve.listen"]))
        address = resolve_listen(text, source=source)
        if not address.loopback and not allow_remote:
            raise UsageError(f"{source} {text!r} is not a loopback address (other machines could reach it): "
                             "add --allow-remote to mean it, and consider --silent")
        state = ServeState(every if every is not None else float(config["serve.interval"]))
        try:
            server = make_server(address, state, silent=silent)
        except OSError as exc:
            raise UsageError(f"{source} {text!r}: cannot listen there ({exc.strerror or exc})") from None
        paths = "/healthz only (--silent)" if silent else "/healthz /report /metrics /"
        _say(f"serving {address.url(server.port)} ({paths}), a run every {state.interval:g} s; "
             "Ctrl-C or SIGTERM stops")
        return serve_runs(prepared, server, state, signals, _say)


def _say(message: str) -> None:
    click.echo(f"mgn: {message}", err=True)
