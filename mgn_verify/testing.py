"""The test kit for check plugins: run ``mgn`` on your checks from pytest and assert on the report.

Installed with mgn-verify, its pytest plugin gives every test suite two fixtures:

- ``mgn_kit``: an :class:`MgnKit` on a fresh temporary directory. ``write_checks`` writes
  ``check_*.py`` files, ``write_config`` writes ``mgn.yaml``, ``verify(*args)`` runs
  ``mgn verify ARGS`` with them (in-process, or ``process=True`` for a real ``mgn`` process) and
  returns a :class:`VerifyRun`: ``exit_code``, ``stdout``, ``stderr``, ``report`` (the JSON
  report), ``statuses()``, ``messages()``, ``result(id)``.
- ``mgn_hooks``: a :class:`HookRecorder` of every hook call made during the test (in-process
  runs only): ``calls``, ``names()``, ``get(name)``. Outside pytest: ``with record_hooks() as r``.

Example::

    def test_disk(mgn_kit, mgn_hooks):
        mgn_kit.write_checks(check_disk='''
            def mgn_add_settings(settings):
                settings.add("disk.min_gb", 10, help="free space needed")

            def check_free(config):
                assert config["disk.min_gb"] <= 50
        ''')
        mgn_kit.write_config({"disk": {"min_gb": 100}})
        run = mgn_kit.verify("disk")            # process=True: the same in a real mgn process
        assert run.exit_code == 1
        assert run.statuses() == {"disk.free": "fail"}
        assert mgn_hooks.get("mgn_add_settings")

``make_config`` gives a check function the ``config`` it would get in a real run, so a check can
be called directly; ``run_verify`` runs ``mgn verify`` in a subprocess outside any kit directory.
``MgnCheckWarning`` is the warning a ``warn`` result becomes under ``pytest --mgn-verify``;
``MgnRunWarning`` one of the run itself (e.g. a waiver matching no check), issued at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .kit._kit import MgnKit, VerifyRun, run_mgn_process
from .kit._recorder import HookCall, HookRecorder, record_hooks
from .kit._warning import MgnCheckWarning, MgnRunWarning

if TYPE_CHECKING:
    from .config import Config

__all__ = ["HookCall", "HookRecorder", "MgnCheckWarning", "MgnKit", "MgnRunWarning", "VerifyRun", "make_config",
           "record_hooks", "run_verify"]


def make_config(values: Mapping[str, Any] | None = None, *, plugins: Sequence[str] = (),
                env: Mapping[str, str] | None = None, config_path: str | None = None) -> Config:
    """The resolved config of a session with these setting overrides (typed values)."""
    from ._session import Session  # the engine, only when asked for

    session = Session(env if env is not None else {"MGN_CONFIG": os.devnull}, lambda message: None)
    loaded = session.load(plugins=list(plugins), checks_dirs=[], config_path=config_path or os.devnull,
                          settings={key: (value, False) for key, value in (values or {}).items()})
    return loaded.config


def run_verify(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
               timeout: float = 120, command: str = "verify") -> VerifyRun:
    """Run ``mgn <command> ARGS --json <tmp>`` in a subprocess; the config defaults to none at all
    (``MGN_CONFIG=/dev/null``) unless ``env`` or ``args`` say otherwise. Past ``timeout`` the
    process is killed: ``TimeoutError`` with its output so far."""
    with tempfile.TemporaryDirectory(prefix="mgn-verify-") as tmp:
        report_path = Path(tmp) / "report.json"
        full_env = {**os.environ, "MGN_CONFIG": os.devnull, **(env or {})}
        code, out, err = run_mgn_process([command, *args, "--json", str(report_path)], full_env, cwd, timeout)
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    return VerifyRun(code, out, err, report)
