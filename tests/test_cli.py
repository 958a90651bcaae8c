"""The command line: help, exit codes, selection, list/explain/graph, no tracebacks."""

from __future__ import annotations

import json

from tests.helpers import ISOLATED

SOURCE = '''
from mgn_verify import check
@check(id="a.base", title="Base works", remediation="restart base", tags=["core"])
def check_base():
    """Base works.

    Why: everything else needs it."""
@check(id="a.top", requires=["a.base"], severity="warning")
def check_top(): pass
@check(id="b.other", tags=["core"])
def check_other(): pass
'''


def test_usage_errors_are_one_line(mgn_process) -> None:
    proc = mgn_process("verify", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr == ("mgn: error: No such option '--bogus'. Did you mean '--verbose'? "
                           "(see 'mgn verify --help')\n")
    proc = mgn_process("verfy")
    assert (proc.returncode, proc.stderr) == (2, "mgn: error: No such command 'verfy'. (see 'mgn --help')\n")


def test_version(mgn_process) -> None:
    proc = mgn_process("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == "mgn, version 0.1.0"


def test_verify_help_documents_exit_codes_and_subcommands(mgn) -> None:
    run = mgn("verify", "--help", report=False)
    assert run.exit_code == 0
    for line in ("0  nothing failed or errored", "1  at least one check failed",
                 "2  usage, configuration, plugin or report-writing error",
                 "3  no check failed, but at least one could not verify", "4  only warnings, and --strict",
                 "130  interrupted", "mgn verify explain ID", "--ignore-preflight-errors"):
        assert line in run.stdout


def test_exit_codes(mgn, checks_dir) -> None:
    def code(source: str, *args: str) -> int:
        return mgn("verify", "--checks-dir", str(checks_dir(check_e=source)), *ISOLATED, *args).exit_code

    assert code("def check_ok(): pass\n") == 0
    assert code("def check_bad(): assert False\n") == 1
    assert code("def check_err(): raise OSError('x')\n") == 3
    assert code("def check_both(): assert False\ndef check_err(): raise OSError('x')\n") == 1
    warn = "from mgn_verify import warn\ndef check_w(): warn('w')\n"
    assert code(warn) == 0
    assert code(warn, "--strict") == 4
    info = "from mgn_verify import check\n@check(severity='info')\ndef check_i(): assert False\n"
    assert code(info, "--strict") == 0     # info never changes the exit code


def test_selection_by_layer_check_skip_and_tag(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_a=SOURCE))
    assert set(mgn("verify", "a", "--checks-dir", directory, *ISOLATED).statuses) == {"a.base", "a.top"}
    # Dependencies of selected checks are pulled in.
    assert list(mgn("verify", "--check", "a.top", "--checks-dir", directory, *ISOLATED).statuses) == ["a.base", "a.top"]
    assert set(mgn("verify", "--tag", "core", "--checks-dir", directory, *ISOLATED).statuses) == {"a.base", "b.other"}
    skipped = mgn("verify", "a", "--skip", "a.base", "--checks-dir", directory, *ISOLATED)
    assert skipped.statuses == {"a.base": "skip", "a.top": "skip"}
    assert skipped.result("a.base")["message"] == "skipped by --skip"


def test_unknown_layer_and_unmatched_glob(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_a=SOURCE))
    run = mgn("verify", "sytem", "--checks-dir", directory, report=False)
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: unknown layer 'sytem' (did you mean 'system'?); known layers: ")
    run = mgn("verify", "--check", "zzz.*", "--checks-dir", directory, *ISOLATED, report=False)
    assert run.stderr == "mgn: error: --check 'zzz.*' matches no check\n"
    run = mgn("verify", "--wait", "soon", "--checks-dir", directory, *ISOLATED, report=False)
    assert run.stderr == "mgn: error: invalid duration 'soon': use e.g. 90s, 5m, 1h30m\n"


def test_list_explain_graph(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_a=SOURCE))
    listing = mgn("verify", "list", "--checks-dir", directory, *ISOLATED)
    assert "a.top" in listing.stdout and "(requires a.base)" in listing.stdout and "3 checks" in listing.stdout
    rows = json.loads(mgn("verify", "list", "--json", "--checks-dir", directory, *ISOLATED).stdout)
    assert {r["id"]: r["requires"] for r in rows} == {"a.base": [], "a.top": ["a.base"], "b.other": []}
    explained = mgn("verify", "explain", "a.base", "--checks-dir", directory, *ISOLATED).stdout
    for text in ("a.base: Base works", "Why: everything else needs it.", "remediation: restart base",
                 "required by: a.top", "tags: core"):
        assert text in explained
    unknown = mgn("verify", "explain", "a.bse", "--checks-dir", directory, *ISOLATED)
    assert unknown.exit_code == 2 and unknown.stderr == "mgn: error: unknown check 'a.bse' (did you mean 'a.base'?)\n"
    base = mgn("verify", "explain", "system.ports.free", "-p", "no:network").stdout
    assert base.startswith("system.ports.free[")
    assert "instances of system.ports.free: system.ports.free[" in base
    dot = mgn("verify", "graph", "--checks-dir", directory, *ISOLATED).stdout
    assert '"a.top" -> "a.base";' in dot and dot.startswith("digraph")
    mermaid = mgn("verify", "graph", "--format", "mermaid", "--checks-dir", directory, *ISOLATED).stdout
    assert mermaid.startswith("graph LR") and "-->" in mermaid


def test_explain_and_list_show_the_settings_a_check_reads(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_z='''
from mgn_verify import check, fixture
from mgn_verify.config import SettingsRegistry

def mgn_add_settings(settings: SettingsRegistry) -> None:
    settings.add("z.limit", 3, help="direct")
    settings.add("z.helper", "h", help="through a helper")
    settings.add("z.conn", "c", help="through a fixture")
    settings.add("z.key", "sekrit-value-123", secret=True, help="never shown")
    settings.add("z.unused", 0, help="read by nothing")
    settings.add("z.cls", 1, help="through a class method")

class Client:
    @classmethod
    def from_config(cls, config):
        return config["z.cls"]

def _threshold(config):
    return config["z.helper"]

@fixture
def conn(config):
    return config["z.conn"], config["z.key"]

@check(id="z.one")
def check_one(config, conn):
    assert config["z.limit"] > 0 and _threshold(config) and Client.from_config(config)
'''))
    explained = mgn("verify", "explain", "z.one", "--checks-dir", directory, *ISOLATED).stdout
    assert 'z.limit = 3  (default)' in explained and 'z.helper = "h"' in explained
    assert 'z.conn = "c"' in explained and 'z.key = "***"' in explained
    assert "z.unused" not in explained and "sekrit-value-123" not in explained
    rows = json.loads(mgn("verify", "list", "--json", "--checks-dir", directory, *ISOLATED).stdout)
    assert rows[0]["settings"] == ["z.cls", "z.conn", "z.helper", "z.key", "z.limit"]


def test_exact_parametrized_ids_work_in_check_skip_and_waivers(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_p='''
from mgn_verify import check, parametrize
@check(id="p.t")
@parametrize("name", ["ab", "a"])
def check_t(name):
    assert name != "ab", "ab is broken"
'''))
    only = mgn("verify", "--checks-dir", directory, *ISOLATED, "--check", "p.t[ab]")
    assert only.statuses == {"p.t[ab]": "fail"}
    skipped = mgn("verify", "--checks-dir", directory, *ISOLATED, "--skip", "p.t[ab]")
    assert skipped.statuses == {"p.t[a]": "pass"}
    waived = mgn("verify", "--checks-dir", directory, *ISOLATED, "--ignore-preflight-errors", "p.t[ab]")
    assert waived.statuses == {"p.t[ab]": "waived", "p.t[a]": "pass"} and waived.exit_code == 0
