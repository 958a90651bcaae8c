"""Issue 11, assertion introspection: a failing plain ``assert`` in a check explains itself with
its operands (pytest's own rewriter) in the console, JSON and JUnit; check files and opted-in
plugin modules only; the rewritten code cached (next to it, else in the user's cache), a warm
cache importing nothing of pytest; a secret escaped by repr still masked; -O strips no assert."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from _pytest.assertion.rewrite import rewrite_asserts as real_rewrite_asserts  # before any test patches it

from tests.helpers import ISOLATED, JUNIT_XSD, Run

#: Longer than pytest's 240-character repr limit: its ``saferepr`` would show both ends of it.
TOKEN = "tok-" + "9f8e7d6c5b4a" * 30
#: repr() escapes all of it: the raw secret never matches the explanation's text.
QUOTED = 'p4ss\\w0rd-"quoted"-\'secret\'\tend'

CHECKS = '''
from mgn_verify import check

def mgn_add_settings(settings):
    settings.add("acme.api_token", "", secret=True, help="the API token")
    settings.add("acme.db_login", "", secret=True, help="the database login")

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

def check_quoted(config):
    login = config["acme.db_login"]
    assert login == "x"

def check_why():
    ok = False
    assert ok, "rejected"
'''

PLAIN = '''"""Asserts left alone: PYTEST_DONT_REWRITE."""

def check_plain():
    nodes = 2
    assert nodes >= 3
'''


@pytest.fixture(autouse=True)
def _user_cache_in_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user cache fallback lands in the test's HOME (tests/conftest.py isolates it)."""
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def cache_file(checks: Path, stem: str = "check_acme") -> Path:
    return checks / "__pycache__" / f"{stem}.{sys.implementation.cache_tag}-mgn-{version('pytest')}.pyc"


def user_cache_file(source: Path) -> Path:
    digest = hashlib.sha1(os.path.abspath(source).encode()).hexdigest()
    return Path.home() / ".cache" / "mgn-verify" / "rewritten" / f"{digest}.pyc"


def settle(source: Path, age: float = 10.0) -> None:
    """Age the source's mtime: a file younger than 2 s is not cached (a same-size edit within
    the mtime granularity would look fresh)."""
    when = time.time_ns() - int(age * 1e9)
    os.utime(source, ns=(when, when))


def test_a_failing_assert_explains_itself_in_console_json_and_junit(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path) -> None:
    directory = checks_dir(check_acme=CHECKS, check_plain=PLAIN)
    junit = tmp_path / "junit.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", f"acme.api_token={TOKEN}",
              "--set", f"acme.db_login={QUOTED}", "--junit", str(junit))
    assert run.exit_code == 1, run.stderr
    assert run.statuses == {"acme.count": "fail", "acme.inline": "fail", "acme.soft": "warn", "acme.token": "fail",
                            "acme.quoted": "fail", "acme.why": "fail", "plain.plain": "fail"}
    messages = {r["id"]: r["message"] for r in run.report["results"]}  # type: ignore[index]
    assert messages["acme.count"] == "assert 2 >= 3"
    assert messages["acme.inline"] == ("only 2 nodes\nscale the pool\nassert 2 >= 3\n"
                                       " +  where 2 = len(['n1', 'n2'])\n +    where ['n1', 'n2'] = list_nodes()")
    assert messages["acme.soft"].startswith("assert ['n1', 'n2'] == ['n1', 'n2', 'n3']\n"
                                            " +  where ['n1', 'n2'] = list_nodes()\n  \n"
                                            "  Right contains one more item: 'n3'")  # pytest's detail
    # pytest's string diff would cut the secret: dropped
    assert messages["acme.token"] == "assert '***' == 'expected'\n  \n  (no diff: an operand holds a secret)"
    assert messages["acme.quoted"].startswith("assert '***' == 'x'\n")  # its repr escaped it: registered too
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
    assert "w0rd" not in everything and "secret\\" not in everything


def _probe(checks: Path, cwd: Path, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """``mgn verify`` in a fresh interpreter, which then prints whether pytest's internals loaded."""
    probe = ("import sys\nfrom mgn_verify.cli import main\n"
             f"try:\n    main(['verify', 'acme', '--checks-dir', {str(checks)!r}, *{ISOLATED!r}])\n"
             "except SystemExit as exc:\n    print('EXIT', exc.code)\n"
             "print('PYTEST', sorted(m for m in sys.modules if m.split('.')[0] in ('_pytest', 'pytest')))\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONDONTWRITEBYTECODE", "XDG_CACHE_HOME")}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={**env, "MGN_CONFIG": os.devnull, "HOME": str(cwd), **env_extra})


def test_rewritten_code_is_cached_reused_without_pytest_and_invalidated_by_an_edit(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the suite may run with PYTHONDONTWRITEBYTECODE
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = len(['n1', 'n2', 'n3'])\n"
                                      "    assert nodes >= 3\n")
    source, cached = directory / "check_acme.py", cache_file(directory)
    # a source younger than 2 s is not cached; an older one is, whole (no temporary file left)
    assert mgn("verify", "--checks-dir", str(directory), *ISOLATED).statuses == {"acme.nodes": "pass"}
    assert not cached.exists() and not user_cache_file(source).exists()
    settle(source)
    assert mgn("verify", "--checks-dir", str(directory), *ISOLATED).statuses == {"acme.nodes": "pass"}
    assert os.listdir(cached.parent) == [cached.name]
    written = cached.stat()
    # a warm cache: a passing run imports nothing of pytest and leaves the cache as it was
    warm = _probe(directory, tmp_path)
    assert warm.stdout.splitlines()[-2:] == ["EXIT 0", "PYTEST []"], warm.stdout + warm.stderr
    assert (cached.stat().st_mtime_ns, cached.stat().st_ino) == (written.st_mtime_ns, written.st_ino)
    # an edit of the same size, a later mtime: rewritten again, the cache replaced whole
    source.write_text(source.read_text().replace(">= 3", ">= 4"))
    settle(source, age=5)
    edited = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert edited.result("acme.nodes")["message"] == "assert 3 >= 4"
    assert cached.stat().st_ino != written.st_ino and os.listdir(cached.parent) == [cached.name]
    # an edit just now: served from the source, the cache left for when the file has settled
    replaced = cached.stat()
    source.write_text(source.read_text().replace(">= 4", ">= 5"))
    assert mgn("verify", "--checks-dir", str(directory), *ISOLATED).result("acme.nodes")["message"] == \
        "assert 3 >= 5"
    assert cached.stat().st_ino == replaced.st_ino


def test_without_pycache_the_user_cache_serves_relative_and_absolute_paths(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # PYTHONDONTWRITEBYTECODE=1, as in CI
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = len(['n1', 'n2', 'n3'])\n"
                                      "    assert nodes >= 3\n")
    settle(directory / "check_acme.py")
    monkeypatch.chdir(tmp_path)
    assert mgn("verify", "--checks-dir", "checks", *ISOLATED).statuses == {"acme.nodes": "pass"}
    assert not (directory / "__pycache__").exists()
    assert user_cache_file(directory / "check_acme.py").is_file()
    # a fresh interpreter with bytecode writing off, the absolute path: the same cache, no pytest
    warm = _probe(directory, tmp_path, PYTHONDONTWRITEBYTECODE="1", HOME=str(Path.home()))
    assert warm.stdout.splitlines()[-2:] == ["EXIT 0", "PYTEST []"], warm.stdout + warm.stderr


def test_an_unwritable_pycache_falls_back_to_the_user_cache_then_to_none(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = 2\n    assert nodes >= 3\n")
    source = directory / "check_acme.py"
    settle(source)
    (directory / "__pycache__").write_text("a file where the directory would go (root ignores modes)")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.result("acme.nodes")["message"] == "assert 2 >= 3", run.stderr
    assert run.stderr == "" and user_cache_file(source).is_file()
    # the user cache unwritable too: no cache, same explanation
    user_cache_file(source).unlink()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    again = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert (again.result("acme.nodes")["message"], again.stderr) == ("assert 2 >= 3", "")
    assert not user_cache_file(source).exists()


def test_python_O_neither_strips_asserts_nor_caches_code_without_them(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path) -> None:
    directory = checks_dir(check_plain=PLAIN)  # compiled as it is, not rewritten
    settle(directory / "check_plain.py")
    report = tmp_path / "optimized.json"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONDONTWRITEBYTECODE", "XDG_CACHE_HOME")}
    optimized = subprocess.run(
        [sys.executable, "-O", "-m", "mgn_verify", "verify", "--checks-dir", str(directory), *ISOLATED,
         "--json", str(report)], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**env, "MGN_CONFIG": os.devnull, "HOME": str(tmp_path)})
    assert optimized.returncode == 1, optimized.stdout + optimized.stderr
    assert json.loads(report.read_text())["results"][0]["message"] == "assertion failed: nodes >= 3"
    assert cache_file(directory, "check_plain").is_file()
    plain = mgn("verify", "--checks-dir", str(directory), *ISOLATED)  # served from that cache
    assert plain.result("plain.plain")["message"] == "assertion failed: nodes >= 3"


def test_the_helper_allowlist_covers_what_pytest_emits() -> None:
    from mgn_verify import _assert_support

    source = textwrap.dedent('''
        import os
        def f(a, b, items):
            assert a and (b or not a)
            assert a < b <= 3, f"custom {a}"
            assert len(items) == os.sep.count("/")
            assert items[0].real is None, items
            assert os.path.isdir(a) or -a in {1: 2}
    ''')
    tree = ast.parse(source)
    real_rewrite_asserts(tree, source.encode())
    emitted = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Name) and node.value.id == "@pytest_ar"}
    assert emitted == {"_saferepr", "_format_assertmsg", "_format_explanation", "_call_reprcompare",
                       "_should_repr_global_name", "_format_boolop"}
    assert emitted <= _assert_support.HELPERS
    assert all(callable(getattr(_assert_support, name)) for name in _assert_support.HELPERS)
    assert not hasattr(_assert_support, "_get_maxsize_for_saferepr")  # pytest's, but not a helper


def _raises(mod: ast.Module, source: bytes, *args: object) -> None:
    raise TypeError("rewrite_asserts() takes a new argument")


def _calls_an_unknown_helper(mod: ast.Module, source: bytes, *args: object) -> None:
    """As a newer pytest might: a helper its module has (so forwarding would find it), not ours."""
    real_rewrite_asserts(mod, source)
    helper = ast.Attribute(ast.Name("@pytest_ar", ast.Load()), "_get_maxsize_for_saferepr", ast.Load())
    mod.body.append(ast.Expr(ast.Call(helper, [ast.Constant(None)], [])))
    ast.fix_missing_locations(mod)


@pytest.mark.parametrize("changed", [_raises, _calls_an_unknown_helper])
def test_a_changed_pytest_rewriter_leaves_asserts_plain(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
        changed: Callable[..., None]) -> None:
    from _pytest.assertion import rewrite

    monkeypatch.setattr(rewrite, "rewrite_asserts", changed)  # pytest's private API: our only seam
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    directory = checks_dir(check_acme="def check_nodes():\n    nodes = 2\n    assert nodes >= 3\n")
    settle(directory / "check_acme.py")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    result = run.result("acme.nodes")
    assert (result["status"], result["message"]) == ("fail", "assertion failed: nodes >= 3")
    # a fallback is not cached: a fixed pytest rewrites
    assert not cache_file(directory).exists() and not user_cache_file(directory / "check_acme.py").exists()


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


DIFFS = '''
from dataclasses import dataclass, field

from mgn_verify import check


def mgn_add_settings(settings):
    settings.add("acme.api_token", "", secret=True, help="the API token")
    settings.add("acme.pin", 0, secret=True, help="a secret number")


@dataclass
class Login:
    user: str
    password: str = field(repr=False)  # out of the repr, yet pytest compares it


def check_dict():
    want = {f"key{i}": i for i in range(60)}
    got = dict(want, key59=-1)
    assert got == want


def check_list():
    assert [1, 2, 3, 4] == [1, 2]


def check_text():
    got, want = "x" * 100 + "50% abc", "x" * 100 + "50% abd"
    assert got == want


def check_many():
    assert {f"k{i}": i for i in range(30)} == {f"k{i}": -i for i in range(30)}


def check_secret_dict(config):
    token = config["acme.api_token"]
    assert {"token": token, "n": 1} == {"token": "other", "n": 1}


def check_secret_field(config):
    assert Login("bob", config["acme.api_token"]) == Login("bob", "x")


def check_pin(config):
    assert config["acme.pin"] == 1
'''


def test_a_failed_comparison_shows_pytests_detail_bounded_and_never_a_secret(
        mgn: Callable[..., Run], checks_dir: Callable[..., Path], tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    run = mgn("verify", "--checks-dir", str(checks_dir(check_acme=DIFFS)), *ISOLATED, "--junit", str(junit),
              "--set", f"acme.api_token={TOKEN}", "--set", "acme.pin=424242", env={"MGN_TRACE_HOOKS": "1"})
    assert run.exit_code == 1, run.stderr
    messages = {r["id"]: r["message"] for r in run.report["results"]}  # type: ignore[index]
    # the 60-key dicts' shown reprs are cut alike: the detail names the differing key
    assert "\n  Omitting 59 identical items\n  Differing items:\n  {'key59': -1} != {'key59': 59}" \
        in messages["acme.dict"]
    assert "\n  Left contains 2 more items, first extra item: 3" in messages["acme.list"]
    assert messages["acme.text"].endswith(  # %-formatting leaves the detail's own % alone
        "\n  \n  Skipping 96 identical leading characters in diff\n  - xxxx50% abd\n  ?           ^\n"
        "  + xxxx50% abc\n  ?           ^")
    # bounded as pytest bounds it: 8 lines, then how many are hidden; no -v advice (no such option)
    many = messages["acme.many"].split("\n")  # (with CI set pytest adds a full diff: more lines hidden)
    assert many[-2] == "  " and re.fullmatch(r"  \.\.\.Full output truncated \(\d+ lines hidden\)", many[-1])
    assert len(many) == 1 + 8 + 2 and many[-3].endswith("...")
    assert not any("-v" in message for message in messages.values())
    # pytest would cut the secret in the detail (and show a field the repr leaves out): dropped
    for cid in ("acme.secret_dict", "acme.secret_field"):
        assert messages[cid].endswith("\n  \n  (no diff: an operand holds a secret)")
    assert messages["acme.pin"] == "assert *** == 1"  # an int secret is masked as a string one
    everything = run.stdout + run.stderr + json.dumps(run.report) + junit.read_text()
    assert "mgn-trace:" in run.stderr  # the hook trace shows the results too
    for leak in (TOKEN[:12], TOKEN[-12:], "424242"):
        assert leak not in everything, everything[max(0, everything.find(leak) - 300):everything.find(leak) + 100]
