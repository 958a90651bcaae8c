"""Issue 9, "a pass is earned": generator checks, awaitables, return values, output capture, --wait."""

from __future__ import annotations

import gc
import json
import sys
import warnings
from pathlib import Path

import pytest

from tests.helpers import ISOLATED

# -- generators are rejected at collection --------------------------------------------------------

GENERATORS = {
    "decorated sync": ('from mgn_verify import check\n@check(id="x.gen")\ndef check_gen():\n    yield 1\n',
                       "is a generator function"),
    "decorated async": ('from mgn_verify import check\n@check(id="x.gen")\nasync def check_gen():\n    yield 1\n',
                        "is an async generator function"),
    "undecorated sync": ("def check_gen():\n    yield 1\n", "is a generator function"),
    "undecorated async": ("async def check_gen():\n    yield 1\n", "is an async generator function"),
}


@pytest.mark.parametrize("source, kind", GENERATORS.values(), ids=list(GENERATORS))
def test_generator_checks_are_a_load_error(mgn, checks_dir, source: str, kind: str) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_x=source)), *ISOLATED)
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("mgn: error: plugin ") and "check_x.py" in lines[0]
    assert f"check 'x.gen' {kind} (it yields): a check returns; put setup/teardown in a @fixture" in lines[0]
    assert run.report is not None and run.report["results"] == []  # the report is still written


def test_a_generator_registered_by_a_hook_is_rejected_too(mgn, checks_dir) -> None:
    directory = checks_dir(check_h='''
from mgn_verify import check, hookimpl
def gen():
    yield 1
@hookimpl
def mgn_register_checks(registry):
    registry.add_check(check(id="h.gen")(gen))
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert "check 'h.gen' is a generator function (it yields)" in run.stderr


# -- awaitables ---------------------------------------------------------------------------------

AWAITABLES = '''
import asyncio, functools
from mgn_verify import check, hookimpl

async def probe(ok):
    await asyncio.sleep(0)
    print("probe ran")
    assert ok, "the probe failed"
    return {"message": "probed", "n": 1}

def logged(func):  # a sync decorator around an async def: calling it returns a coroutine
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper

@check(id="a.sync_coro_pass")
def check_sync_coro_pass(): return probe(True)

@check(id="a.sync_coro_fail")
def check_sync_coro_fail(): return probe(False)

@check(id="a.wrapped")
@logged
async def check_wrapped():
    await asyncio.sleep(0)
    assert False, "the wrapped body ran"

@check(id="a.partial")
def check_partial(): return functools.partial(probe, True)()

@check(id="a.slow_coro", timeout=0.3)
def check_slow_coro(): return asyncio.sleep(30)

@check(id="a.coro_returns_list")
def check_coro_returns_list():
    async def inner(): return [1, 2]
    return inner()

async def forgotten(): return None

@hookimpl
def mgn_register_checks(registry):  # a partial of an async function is awaited like one
    registry.add_check(check(id="a.registered_partial", title="partial")(functools.partial(probe, False)))

@check(id="a.forgot_await")
async def check_forgot_await(): return forgotten()
'''


def test_awaitables_returned_by_checks_are_run_or_rejected(mgn, checks_dir) -> None:
    directory = checks_dir(check_a=AWAITABLES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)], [str(w.message) for w in caught]
    assert run.statuses == {
        "a.sync_coro_pass": "pass", "a.sync_coro_fail": "fail", "a.wrapped": "fail", "a.partial": "pass",
        "a.slow_coro": "error", "a.coro_returns_list": "error", "a.forgot_await": "error",
        "a.registered_partial": "fail",
    }
    assert run.result("a.sync_coro_pass")["message"] == "probed"
    assert run.result("a.sync_coro_pass")["details"] == {"n": 1}
    assert run.result("a.sync_coro_pass")["output"] == "probe ran\n"  # it ran, on the loop, captured
    assert run.result("a.sync_coro_fail")["message"] == "the probe failed"
    assert run.result("a.wrapped")["message"] == "the wrapped body ran"
    assert run.result("a.slow_coro")["message"] == "timed out after 0.3 s"
    assert run.result("a.slow_coro")["duration_s"] < 5
    assert run.result("a.coro_returns_list")["message"].startswith("returned a list [1, 2]")
    assert run.result("a.forgot_await")["message"] == "returned an un-awaited coroutine: did you forget `await`?"


# -- return values ------------------------------------------------------------------------------

RETURNS = '''
from mgn_verify import check

class Thing:
    def __repr__(self): return "<Thing>"

@check(id="r.list")
def check_list(): return [1, 2, 3]
@check(id="r.int")
def check_int(): return 42
@check(id="r.str")
def check_str(): return "all good"
@check(id="r.bytes")
def check_bytes(): return b"raw"
@check(id="r.object")
def check_object(): return Thing()
@check(id="r.bool")
def check_bool(): return True
@check(id="r.generator_object")
def check_generator_object(): return (n for n in range(3))
@check(id="r.async_int")
async def check_async_int(): return 7
@check(id="r.long")
def check_long(): return "x" * 10_000
@check(id="r.secret")
def check_secret(config): return config["api.token"] + "-" + "y" * 500
@check(id="r.none")
def check_none(): return None
@check(id="r.dict")
def check_dict(): return {"message": 42, "n": 1}
'''


def test_only_none_or_a_dict_may_be_returned(mgn, checks_dir) -> None:
    token = "tok-" + "s3cr3t" * 30  # longer than the shown repr: it must be redacted before it is cut
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=RETURNS)), *ISOLATED, env={"MGN_API_TOKEN": token})
    allowed = ": a check returns None or a dict ({'message': ..., **details})"
    expected = {
        "r.list": "returned a list [1, 2, 3]", "r.int": "returned an int 42", "r.str": "returned a str 'all good'",
        "r.bytes": "returned a bytes b'raw'", "r.object": "returned a Thing <Thing>", "r.bool": "returned a bool True",
        "r.async_int": "returned an int 7",
    }
    for check_id, start in expected.items():
        result = run.result(check_id)
        assert (result["status"], result["message"]) == ("error", start + allowed)
    assert run.result("r.generator_object")["message"].startswith("returned a generator <generator object")
    long = run.result("r.long")["message"]
    assert long.startswith("returned a str 'xxx") and len(long) < 300
    secret = run.result("r.secret")["message"]
    assert secret.startswith("returned a str '***-yyy") and token[:20] not in secret
    assert run.result("r.none")["status"] == "pass"
    assert (run.result("r.dict")["status"], run.result("r.dict")["message"]) == ("pass", "42")
    assert run.result("r.dict")["details"] == {"n": 1}


# -- output capture -----------------------------------------------------------------------------

PRINTING = '''
import asyncio, sys, threading
from mgn_verify import check, fixture

BARRIER = threading.Barrier(2, timeout=10)

@fixture
def noisy():
    print("fixture being created")
    return 1

@check(id="p.sync_a")
def check_sync_a():
    BARRIER.wait()
    for n in range(200):
        print(f"a{n}")
    sys.stderr.write("a to stderr\\n")

@check(id="p.sync_b")
def check_sync_b():
    BARRIER.wait()
    for n in range(200):
        print(f"b{n}")
    sys.stdout.buffer.write(b"b raw bytes\\n")

@check(id="p.async_c")
async def check_async_c():
    for n in range(50):
        print(f"c{n}")
        await asyncio.sleep(0)

@check(id="p.async_d")
async def check_async_d():
    for n in range(50):
        print(f"d{n}")
        await asyncio.sleep(0)
    assert False, "d failed"

@fixture
async def noisy_async():
    print("async fixture being created")
    return 2

@check(id="p.fixture_user")
def check_fixture_user(noisy): pass

@check(id="p.async_fixture_user")
async def check_async_fixture_user(noisy_async): pass

@check(id="p.silent")
def check_silent(): pass

@check(id="p.big")
def check_big():
    print("FIRST")
    for n in range(20_000):
        print(f"line {n:05d} " + "z" * 20)
    print("LAST")

@check(id="p.secret")
def check_secret(config):
    config.mark_secret("runtime-cred-123456")
    print("token is", config["api.token"], "and runtime-cred-123456")
'''


def test_output_is_captured_per_check(mgn, checks_dir) -> None:
    token = "tok-9f8e7d6c5b4a"
    run = mgn("verify", "--checks-dir", str(checks_dir(check_p=PRINTING)), *ISOLATED, "--concurrency", "8",
              env={"MGN_API_TOKEN": token})
    assert run.exit_code == 1  # p.async_d fails
    outputs = {r["id"]: r["output"] for r in run.report["results"]}
    assert outputs["p.sync_a"] == "".join(f"a{n}\n" for n in range(200)) + "a to stderr\n"
    assert outputs["p.sync_b"] == "".join(f"b{n}\n" for n in range(200)) + "b raw bytes\n"
    assert outputs["p.async_c"] == "".join(f"c{n}\n" for n in range(50))
    assert outputs["p.async_d"] == "".join(f"d{n}\n" for n in range(50))
    assert outputs["p.fixture_user"] == "fixture being created\n"
    assert outputs["p.async_fixture_user"] == "async fixture being created\n"
    assert outputs["p.silent"] == ""
    assert outputs["p.secret"] == "token is *** and ***\n"
    big = outputs["p.big"]
    assert big.startswith("FIRST\nline 00000") and big.endswith("line 19999 " + "z" * 20 + "\nLAST\n")
    assert len(big) < 17 * 1024 and "characters cut ...]" in big
    for stray in ("a0\n", "c0\n", "fixture being created", "FIRST", token, "runtime-cred"):
        assert stray not in run.stdout + run.stderr


def test_printing_checks_never_corrupt_json_on_stdout(mgn_process, checks_dir) -> None:
    directory = checks_dir(check_p='''
import asyncio
from mgn_verify import check
@check(id="p.sync")
def check_sync(): print("{not json from a sync check")
@check(id="p.async")
async def check_async():
    print("not json from an async check")
    assert False, "fails"
''')
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "json")
    report = json.loads(proc.stdout)  # nothing but the report on stdout
    assert {r["id"]: r["output"] for r in report["results"]} == {
        "p.sync": "{not json from a sync check\n", "p.async": "not json from an async check\n"}
    assert "not json" not in proc.stderr
    assert proc.returncode == 1


def test_capture_redacts_before_it_cuts() -> None:
    from mgn_verify._capture import HEAD, Capture
    from mgn_verify.config import Redactor

    redactor = Redactor()
    secret = "s3cret-" + "k" * 40
    redactor.add(secret)
    for total in (40_000, 400_000):  # kept whole until rendered / middle dropped while written
        capture = Capture()
        capture.write("a" * (HEAD - 10) + secret)  # the secret straddles the first cut
        capture.write("b" * total + secret)        # and ends the output
        shown = capture.render(redactor.text)
        assert secret[:10] not in shown and shown.endswith("b***")
        assert shown.startswith("a" * (HEAD - 10) + "***") and "characters cut ...]" in shown
        assert len(shown) < 2 * HEAD + 100


def test_writes_outside_checks_pass_through_and_streams_are_restored(mgn, checks_dir) -> None:
    from mgn_verify._capture import _Stream

    directory = checks_dir(check_h='''
import sys
from mgn_verify import check, hookimpl
@hookimpl
def mgn_result(result):
    print(f"hook saw {result.id}")
@check(id="h.ok")
def check_ok(): print("inside the check")
@check(id="h.broken")
def check_broken(): raise RuntimeError("boom")
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert "hook saw h.ok" in run.stdout and "hook saw h.broken" in run.stdout  # the framework's side
    assert "inside the check" not in run.stdout and run.result("h.ok")["output"] == "inside the check\n"
    assert not isinstance(sys.stdout, _Stream) and not isinstance(sys.stderr, _Stream)


# -- --wait uses its whole deadline -------------------------------------------------------------

def test_wait_uses_the_whole_deadline(mgn, checks_dir, tmp_path: Path) -> None:
    # Passes once 2 s have gone by since its first attempt. Backoff 0.5 s, 1 s, 2 s: the old runner
    # gave up at 1.5 s because the next sleep would cross the 2.5 s deadline.
    marker = tmp_path / "first-attempt"
    directory = checks_dir(check_w=f'''
import time
from pathlib import Path
from mgn_verify import check
MARKER = Path({str(marker)!r})
@check(id="w.slow")
def check_slow():
    if not MARKER.exists():
        MARKER.write_text(repr(time.monotonic()))
    waited = time.monotonic() - float(MARKER.read_text())
    assert waited >= 2.0, f"only {{waited:.2f}} s"
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--wait", "2.5s")
    assert run.result("w.slow")["status"] == "pass", run.result("w.slow")
    assert run.result("w.slow")["duration_s"] < 6
