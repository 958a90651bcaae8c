"""Reports: JSON against its schema, JUnit against Jenkins' XSD, atomic files, secrets redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from tests.helpers import ISOLATED, JUNIT_XSD, REPORT_SCHEMA

NASTY = 'quote " apostrophe \' <tag> & amp; non-ASCII é ✓ 日本 control \x01\x07\x1b[31m tab\tnew\nline'

SOURCE = f'''
from mgn_verify import check, skip, warn, parametrize
NASTY = {NASTY!r}
@check(id="r.pass", tags=["t"])
def check_pass(): return {{"message": NASTY, "nested": {{"k": [1, NASTY]}}}}
@check(id="r.fail", remediation="fix: " + NASTY)
def check_fail(): assert False, NASTY
@check(id="r.error")
def check_error(): raise ValueError(NASTY)
@check(id="r.warn", severity="warning")
def check_warn(): warn(NASTY)
@check(id="r.skip")
def check_skip(): skip(NASTY)
@check(id="r.blocked", requires=["r.fail"])
def check_blocked(): pass
@check(id="r.waived")
def check_waived(): assert False, NASTY
@parametrize("port", [1])
@check(id="r.param")
def check_param(port): pass
'''


@pytest.fixture
def nasty_run(mgn, checks_dir, tmp_path: Path):  # type: ignore[no-untyped-def]
    junit = tmp_path / "out" / "junit.xml"
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r=SOURCE)), *ISOLATED, "--junit", str(junit),
              "--ignore-preflight-errors=r.waived")
    return run, junit


def test_json_report_validates_against_the_schema(nasty_run) -> None:  # type: ignore[no-untyped-def]
    run, _ = nasty_run
    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(run.report, schema, format_checker=jsonschema.FormatChecker())
    assert run.report["schema_version"] == "1.2"
    assert run.report["tool"]["name"] == "mgn-verify"
    assert run.report["summary"]["counts"] == {"pass": 2, "warn": 1, "fail": 1, "error": 1, "skip": 1,
                                              "blocked": 1, "waived": 1}
    assert run.report["summary"]["exit_code"] == run.exit_code == 1
    assert run.result("r.param[1]")["target"] == "1"
    assert run.result("r.fail")["message"] == NASTY


def test_junit_validates_against_the_xsd(nasty_run) -> None:  # type: ignore[no-untyped-def]
    _, junit = nasty_run
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(junit))
    doc = schema.to_dict(str(junit))
    suite = doc["testsuite"][0]
    assert suite["@name"] == "r" and suite["@tests"] == "8" and suite["@failures"] == "1" and suite["@errors"] == "1"
    cases = {case["@name"]: case for case in suite["testcase"]}
    assert cases["r.fail"]["@classname"] == "r"
    assert "failure" in cases["r.fail"] and "error" in cases["r.error"]
    for skipped in ("r.skip", "r.blocked", "r.waived"):
        assert "skipped" in cases[skipped]
    assert cases["r.blocked"]["skipped"][0]["@message"].startswith("blocked: blocked by r.fail")
    # A warning stays visible in system-out instead of vanishing.
    assert "status: warn" in cases["r.warn"]["system-out"][0]
    message = cases["r.fail"]["failure"][0]["@message"]
    assert message.startswith('quote " apostrophe \' <tag> & amp; non-ASCII é ✓ 日本 control \ufffd\ufffd\ufffd[31m')


def test_unwritable_report_path_is_exit_2_and_console_still_printed(mgn, checks_dir, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r='def check_ok(): pass\n')), *ISOLATED,
              "--junit", str(blocker / "junit.xml"), report=False)
    assert run.exit_code == 2
    assert "✓ r.ok" in run.stdout
    assert f"cannot write report {blocker / 'junit.xml'}" in run.stdout
    expected = f"mgn: error: cannot write report {blocker / 'junit.xml'}: {blocker} is not a directory"
    assert run.stderr.strip() == expected


def test_reports_are_written_atomically(mgn, checks_dir, tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    mgn("verify", "--checks-dir", str(checks_dir(check_r='def check_ok(): pass\n')), *ISOLATED,
        "--json", str(target))
    assert json.loads(target.read_text())["summary"]["total"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r.json")] == []


def test_stdout_formats(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_r='def check_ok(): pass\n'))
    as_json = mgn("verify", "--checks-dir", directory, *ISOLATED, "-o", "json", report=False)
    assert json.loads(as_json.stdout)["results"][0]["id"] == "r.ok"
    as_junit = mgn("verify", "--checks-dir", directory, *ISOLATED, "-o", "junit", report=False)
    assert as_junit.stdout.startswith('<?xml version="1.0" encoding="utf-8"?>')
    unknown = mgn("verify", "--checks-dir", directory, *ISOLATED, "-o", "jsn", report=False)
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("mgn: error: unknown report format 'jsn' (did you mean 'json'?)")


def test_no_colour_without_a_terminal(mgn, checks_dir) -> None:
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r='def check_ok(): pass\n')), *ISOLATED, report=False)
    assert "\x1b[" not in run.stdout


def test_secrets_never_reach_any_report(mgn, mgn_process, checks_dir, tmp_path: Path) -> None:
    token, password = "tok-9f8e7d6c5b4a", "hunter2-rdb-pass"
    directory = checks_dir(check_s='''
from mgn_verify import check
@check(id="s.leak", remediation="curl -H 'Authorization: Bearer {token}'")
def check_leak(config):
    assert False, f"login with {config['api.token']} / {config['rethinkdb.password']} failed"
@check(id="s.details")
def check_details(config, runtime_secret):
    return {"headers": {"Authorization": "Bearer " + config["api.token"]}, "found": runtime_secret}
from mgn_verify import fixture
@fixture
def runtime_secret(config):
    config.mark_secret("kubeconfig-cred-123456")
    return "kubeconfig-cred-123456"
'''.replace("{token}", token))
    config = tmp_path / "c.yaml"
    config.write_text(f"rethinkdb:\n  password: {password}\n")
    junit = tmp_path / "j.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config), "--junit", str(junit),
              env={"MGN_API_TOKEN": token})
    console = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config), "-v",
                  report=False, env={"MGN_API_TOKEN": token})
    everything = json.dumps(run.report) + junit.read_text() + console.stdout + console.stderr
    for secret in (token, password, "kubeconfig-cred-123456"):
        assert secret not in everything
    assert run.result("s.leak")["message"] == "login with *** / *** failed"
    assert run.result("s.details")["details"]["headers"]["Authorization"] == "Bearer ***"
    # A real process, so the report's argv is the real command line.
    argv_report = tmp_path / "argv.json"
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--set", f"api.token={token}",
                       "--json", str(argv_report))
    assert f"api.token={token}" not in proc.stdout + proc.stderr + argv_report.read_text()
    assert "api.token=***" in json.loads(argv_report.read_text())["run"]["argv"]
    shown = mgn("config", "show", "--config", str(config), env={"MGN_API_TOKEN": token})
    assert token not in shown.stdout and password not in shown.stdout
    assert 'api.token' in shown.stdout and '"***"' in shown.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory unwritable for everyone")
def test_report_dir_is_created(mgn, checks_dir, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "r.json"
    run = mgn("verify", "--checks-dir", str(checks_dir(check_r='def check_ok(): pass\n')), *ISOLATED,
              "--json", str(target))
    assert run.exit_code == 0 and target.exists()


def test_reporters_are_plugins_that_can_be_blocked(mgn, checks_dir, tmp_path: Path) -> None:
    directory = str(checks_dir(check_r='def check_ok(): pass\n'))
    quiet = mgn("verify", "--checks-dir", directory, *ISOLATED, "-p", "no:console", report=False)
    assert quiet.exit_code == 0 and quiet.stdout == ""
    no_json = mgn("verify", "--checks-dir", directory, *ISOLATED, "-p", "no:json", "--json", str(tmp_path / "x"),
                  report=False)
    assert no_json.exit_code == 2
    assert no_json.stderr.startswith("mgn: error: unknown report format 'json'")


def test_a_crashing_reporter_plugin_costs_only_its_own_report(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_r='''
def check_ok(): pass
def mgn_register_reporters(reporters):
    class Broken:
        def __init__(self, context): pass
        def render(self, report): raise RuntimeError("template missing")
    reporters.add("broken", Broken)
''')
    out = tmp_path / "r.json"
    # One report per destination (issue 9): the broken one on stdout, the JSON report in a file.
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-o", "broken", "--json", str(out), report=False)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert "reporter 'broken' failed: RuntimeError: template missing" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    data = json.loads(out.read_text())
    assert data["results"][0]["status"] == "pass"
    assert data["summary"]["errors"] == ["reporter 'broken' failed: RuntimeError: template missing"]


def test_argv_is_scrubbed_even_when_loading_failed(mgn_process, tmp_path: Path) -> None:
    from mgn_verify.config.redact import scrub_argv

    assert scrub_argv(["mgn", "--set", "api.token=abc", "--set=acme.password=x", "--set", "verify.timeout=3",
                       "api.token=notaflag"]) == ["mgn", "--set", "api.token=***", "--set=acme.password=***",
                                                  "--set", "verify.timeout=3", "api.token=***"]  # any KEY=VALUE
    out = tmp_path / "r.json"
    # An unknown key is only a warning now (issue 9): a missing config file makes loading fail.
    proc = mgn_process("verify", "--set", "acme.api_key=sekrit-value", "--config", str(tmp_path / "missing.yaml"),
                       "--json", str(out))
    assert proc.returncode == 2
    assert "sekrit-value" not in out.read_text() + proc.stderr
