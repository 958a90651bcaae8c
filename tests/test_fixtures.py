"""Fixtures: injected by name, created lazily once per run, torn down at the end, failures shared."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ISOLATED


def test_fixture_lifecycle(mgn, checks_dir, tmp_path: Path) -> None:
    log = tmp_path / "log"
    directory = checks_dir(check_f=f'''
from pathlib import Path
from mgn_verify import check, fixture
LOG = Path({str(log)!r})
def note(text):
    with LOG.open("a") as handle: handle.write(text + "\\n")

@fixture
def base():
    note("base up")
    yield "B"
    note("base down")

@fixture
def client(base, config):
    note("client up")
    yield base + "C"
    note("client down")

@fixture
async def async_value():
    return "A"

@fixture
def unused():
    note("unused up")
    return 1

@check(id="f.one")
def check_one(client): return {{"message": client}}

@check(id="f.two")
def check_two(client, async_value): return {{"message": client + async_value}}

@check(id="f.three")
async def check_three(client): return {{"message": client}}
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.statuses == {"f.one": "pass", "f.two": "pass", "f.three": "pass"}
    assert run.result("f.two")["message"] == "BCA"
    # Created once and lazily (unused never), torn down newest first at the end.
    assert log.read_text().splitlines() == ["base up", "client up", "client down", "base down"]


def test_failing_fixture_is_one_root_cause(mgn, checks_dir, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    directory = checks_dir(check_f=f'''
from pathlib import Path
from mgn_verify import check, fixture
@fixture
def database():
    with open({str(calls)!r}, "a") as handle: handle.write("x")
    raise ConnectionRefusedError("127.0.0.1:28015 refused")
@check(id="f.a")
def check_a(database): pass
@check(id="f.b")
def check_b(database): pass
@check(id="f.c")
async def check_c(database): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    message = "fixture 'database' failed: ConnectionRefusedError: 127.0.0.1:28015 refused"
    for cid in ("f.a", "f.b", "f.c"):
        assert run.result(cid)["status"] == "error"
        assert run.result(cid)["message"] == message
    assert calls.read_text() == "x"        # tried once, not once per check
    assert run.exit_code == 3
    assert "fixture 'database' failed for 3: f.a, f.b, f.c" in mgn(
        "verify", "--checks-dir", str(directory), *ISOLATED, report=False).stdout


def test_a_failing_dependency_fixture_is_the_root_cause(mgn, checks_dir) -> None:
    directory = checks_dir(check_f='''
from mgn_verify import check, fixture
@fixture
def base(): raise TimeoutError("no answer from 10.0.0.1:6443")
@fixture
def client(base): return base
@check(id="f.uses_client")
def check_uses_client(client): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    result = run.result("f.uses_client")
    assert result["message"] == "fixture 'base' failed: TimeoutError: no answer from 10.0.0.1:6443"
    assert result["details"] == {"fixture_error": "base"}


def test_teardown_error_is_reported_not_fatal(mgn, checks_dir) -> None:
    directory = checks_dir(check_f='''
from mgn_verify import check, fixture
@fixture
def leaky():
    yield 1
    raise RuntimeError("could not close")
@check(id="f.uses")
def check_uses(leaky): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.statuses == {"f.uses": "pass"}
    assert run.report["summary"]["errors"] == ["fixture 'leaky' teardown failed: RuntimeError: could not close"]


def test_unknown_fixture_is_a_load_error(mgn, checks_dir) -> None:
    directory = checks_dir(check_f='''
from mgn_verify import check
@check(id="f.x")
def check_x(kube_client): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr.startswith("mgn: error: check 'f.x' asks for fixture 'kube_client', which no plugin provides")


def test_async_generator_fixture_and_fixture_cycles(mgn, checks_dir, tmp_path: Path) -> None:
    log = tmp_path / "log"
    directory = checks_dir(check_f=f'''
from mgn_verify import check, fixture
@fixture
async def session():
    yield "S"
    with open({str(log)!r}, "w") as handle: handle.write("closed")
@fixture
def chicken(egg): return 1
@fixture
def egg(chicken): return 2
@check(id="f.async_gen")
async def check_async_gen(session): return {{"message": session}}
@check(id="f.cycle")
def check_cycle(chicken): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.result("f.async_gen")["message"] == "S"
    assert log.read_text() == "closed"
    assert run.result("f.cycle")["status"] == "error"
    cycle = "fixture 'chicken' failed: fixture dependency cycle: chicken -> egg -> chicken"
    assert run.result("f.cycle")["message"] == cycle
