"""``mgn verify --version``: mgn's version, then every plugin a run with the same options loads
(name, source, distribution, version, hooks); a broken plugin is the usual one-line error."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from mgn_verify import __version__
from tests.helpers import Run

HOOKED = '''
from mgn_verify import hookimpl

@hookimpl
def mgn_add_settings(settings):
    settings.add("team.level", 1)

def check_ok():
    pass
'''


def _rows(stdout: str) -> dict[str, list[str]]:
    """The plugin table (below "plugins:") by plugin name, each row split into its columns."""
    lines = stdout.splitlines()
    assert lines[:2] == [f"mgn, version {__version__}", "plugins:"]
    assert lines[2].split() == ["NAME", "SOURCE", "DISTRIBUTION", "VERSION", "HOOKS"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[3:]]
    return {row[0]: row[1:] for row in rows}


def test_version_lists_the_plugins_a_run_would_load(mgn: Callable[..., Run],
                                                    checks_dir: Callable[..., Path]) -> None:
    directory = checks_dir(check_team=HOOKED)
    run = mgn("verify", "--version", "--checks-dir", str(directory), "-p", "no:kubernetes")
    assert run.exit_code == 0, run.stderr
    rows = _rows(run.stdout)
    assert rows["system"] == ["entry point", "mgn-verify", __version__, "mgn_add_settings, mgn_register_checks"]
    assert rows["console"] == ["entry point", "mgn-verify", __version__, "mgn_register_reporters"]
    assert rows[str(directory / "check_team.py")] == ["checks-dir", "-", "-", "mgn_add_settings"]
    assert "kubernetes" not in rows  # -p no:NAME works as for a run
    assert run.report is None  # nothing ran


def test_a_broken_plugin_is_one_line(mgn: Callable[..., Run], checks_dir: Callable[..., Path]) -> None:
    run = mgn("verify", "--version", "-p", "no_such_module_xyz")
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr == "mgn: error: plugin 'no_such_module_xyz': no such module or entry point (given with -p)\n"
    broken = checks_dir(check_broken="import no_such_module_xyz\n")
    run = mgn("verify", "--version", "--checks-dir", str(broken))
    assert run.exit_code == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("mgn: error: ") and "check_broken.py" in run.stderr


def test_mgn_version_stays_one_line(mgn: Callable[..., Run]) -> None:
    run = mgn("--version")
    assert (run.exit_code, run.stdout) == (0, f"mgn, version {__version__}\n")
