"""Issue 11, assertion introspection: a failing plain ``assert`` in a check explains itself with
its operands (pytest's own rewriter) in the console, JSON and JUnit; check files and opted-in
plugin modules only; the rewritten code cached, a warm cache importing nothing of pytest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD, Run

#: Longer than pytest's 240-character repr limit: its ``saferepr`` would show both ends of it.
TOKEN = "tok-" + "9f8e7d6c5b4a" * 30

CHECKS = '''
from mgn_verify import check

def mgn_add_settings(settings):
    settings.add("acme.api_token", "", secret=True, help="the API token")

def list_nodes():
    return ["n1", "n2"]

def check_count():
    nodes = len(list_nodes())
    assert nodes >= 3

@check(id="acme.inline")
def check_inline():
    assert len(list_nodes()) >= 3, "only 2 nodes\\nscale the pool"

@check(severity="warning")
def check_soft():
    assert list_nodes() == ["n1", "n2", "n3"]

def check_token(config):
    token = config["acme.api_token"]
    assert token == "expected"

def check_why():
    ok = False
    assert ok, "rejected"
'''

PLAIN = '''"""Asserts left alone: PYTEST_DONT_REWRITE."""

def check_plain():
    nodes = 2
    assert nodes >= 3
'''


def cache_file(checks: Path, stem: str = "check_acme") -> Path:
    return checks / "__pycache__" / f"{stem}.{sys.implementation.cache_tag}-mgn-{version('pytest')}.pyc"


def test_a_failing_assert_explains_itself_in_console_json_and_junit(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path) -> None:
    directory = checks_dir(check_acme=CHECKS, check_plain=PLAIN)
    junit = tmp_path / "junit.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", f"acme.api_token={TOKEN}",
              "--junit", str(junit))
    assert run.exit_code == 1, run.stderr
    assert run.statuses == {"acme.count": "fail", "acme.inline": "fail", "acme.soft": "warn", "acme.token": "fail",
                            "acme.why": "fail", "plain.plain": "fail"}
    messages = {r["id"]: r["message"] for r in run.report["results"]}  # type: ignore[index]
    assert messages["acme.count"] == "assert 2 >= 3"
    assert messages["acme.inline"] == ("only 2 nodes\nscale the pool\nassert 2 >= 3\n"
                                       " +  where 2 = len(['n1', 'n2'])\n +    where ['n1', 'n2'] = list_nodes()")
    assert messages["acme.soft"] == "assert ['n1', 'n2'] == ['n1', 'n2', 'n3']\n +  where ['n1', 'n2'] = list_nodes()"
    assert messages["acme.token"] == "assert '***' == 'expected'"
    assert messages["acme.why"] == "rejected"  # "assert False" under a message says nothing more
    assert messages["plain.plain"] == "assertion failed: nodes >= 3"
    # the console indents the explanation under its check, line by line
    assert "      only 2 nodes\n      scale the pool\n      assert 2 >= 3\n       +  where 2 = len(['n1', 'n2'])\n" \
        in run.stdout
    # JUnit: valid, the explanation in the failure's message and in the case's system-out
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(junit))
    doc: Any = schema.to_dict(str(junit))
    cases = {case["@name"]: case for case in doc["testsuite"][0]["testcase"]}
    assert cases["acme.inline"]["failure"][0]["@message"] == messages["acme.inline"]
    assert "message: assert ['n1', 'n2'] == ['n1', 'n2', 'n3']\n +  where" in cases["acme.soft"]["system-out"][0]
    everything = run.stdout + run.stderr + json.dumps(run.report) + junit.read_text()
    assert TOKEN[:12] not in everything and TOKEN[-12:] not in everything


def _probe(checks: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mgn verify`` in a fresh interpreter, which then prints whether pytest's internals loaded."""
    probe = ("import sys\nfrom mgn_verify.cli import main\n"
             f"try:\n    main(['verify', 'acme', '--checks-dir', {str(checks)!r}, *{ISOLATED!r}])\n"
             "except SystemExit as exc:\n    print('EXIT', exc.code)\n"
             "print('PYTEST', sorted(m for m in sys.modules if m.split('.')[0] in ('_pytest', 'pytest')))\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={**env, "MGN_CONFIG": os.devnull, "HOME": str(cwd)})


def test_rewritten_code_is_cached_reused_without_pytest_and_invalidated_by_an_edit(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the suite may run with PYTHONDONTWRITEBYTECODE
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = len(['n1', 'n2', 'n3'])\n"
                                      "    assert nodes >= 3\n")
    assert mgn("verify", "--checks-dir", str(directory), *ISOLATED).statuses == {"acme.nodes": "pass"}
    cached = cache_file(directory)
    written = cached.stat()
    # a warm cache: a passing run imports nothing of pytest and leaves the cache as it was
    warm = _probe(directory, tmp_path)
    assert warm.stdout.splitlines()[-2:] == ["EXIT 0", "PYTEST []"], warm.stdout + warm.stderr
    assert (cached.stat().st_mtime_ns, cached.stat().st_ino) == (written.st_mtime_ns, written.st_ino)
    # an edit of the same size, a later mtime: rewritten again
    source = directory / "check_acme.py"
    before = source.stat()
    source.write_text(source.read_text().replace(">= 3", ">= 4"))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    edited = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert edited.result("acme.nodes")["message"] == "assert 3 >= 4"
    assert cached.stat().st_ino != written.st_ino  # replaced whole (a new file renamed over it)


def test_no_cache_when_pycache_cannot_be_written(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = 2\n    assert nodes >= 3\n")
    (directory / "__pycache__").write_text("a file where the directory would go (root ignores modes)")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.result("acme.nodes")["message"] == "assert 2 >= 3", run.stderr
    assert run.stderr == ""


def test_a_changed_pytest_rewriter_leaves_asserts_plain(mgn: Callable[..., Run], checks_dir: Callable[..., Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from _pytest.assertion import rewrite

    def moved(*args: object) -> None:
        raise TypeError("rewrite_asserts() takes a new argument")

    monkeypatch.setattr(rewrite, "rewrite_asserts", moved)  # pytest's private API: our only seam
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = 2\n    assert nodes >= 3\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    result = run.result("acme.nodes")
    assert (result["status"], result["message"]) == ("fail", "assertion failed: nodes >= 3")
    assert not cache_file(directory).exists()  # a fallback is not cached: a fixed pytest rewrites


def test_a_plugin_package_opts_in_with_register_assert_rewrite(tmp_path: Path) -> None:
    package = tmp_path / "site" / "acmeplug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent('''
        from . import helpers  # imported before it is registered: stays plain, with a warning
        from mgn_verify import register_assert_rewrite
        register_assert_rewrite(__name__ + ".checks", __name__ + ".helpers")
    '''))
    (package / "helpers.py").write_text("def enough(n):\n    assert n >= 3\n")
    (package / "checks.py").write_text(textwrap.dedent('''
        from mgn_verify import check
        from . import helpers

        @check(id="acmeplug.nodes")
        def check_nodes():
            nodes = len(["n1"])
            assert nodes >= 3, "too few nodes"

        @check(id="acmeplug.helped")
        def check_helped():
            helpers.enough(1)
    '''))
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mgn_verify", "verify", "acmeplug", "-p", "acmeplug.checks", *ISOLATED,
         "--json", str(report)], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site"), "MGN_CONFIG": os.devnull, "HOME": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    messages = {r["id"]: r["message"] for r in json.loads(report.read_text())["results"]}
    assert messages == {"acmeplug.nodes": "too few nodes\nassert 1 >= 3", "acmeplug.helped": "assertion failed: n >= 3"}
    assert "AssertRewriteWarning: module 'acmeplug.helpers' was imported already" in proc.stderr
