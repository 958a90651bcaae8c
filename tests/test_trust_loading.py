"""While plugins load: stdout stays the command's, and an early error never quotes a secret
(issue 9, found by trying it as an unlucky user would)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ISOLATED

SECRET = "supersecret-token-123"

PRINTS_AT_IMPORT = '''
import os, sys
print("IMPORT-PRINT")
os.write(1, b"FD-WRITE\\n")
from mgn_verify import check

def mgn_configure(config):
    print("CONFIGURE-PRINT")

@check(id="loud.ok")
def check_ok():
    pass
'''


def test_what_plugins_print_while_loading_never_reaches_stdout(mgn_process, checks_dir) -> None:
    directory = checks_dir(check_loud=PRINTS_AT_IMPORT)
    for args in (["verify", "-o", "json"], ["verify", "list", "--json"], ["config", "show", "--json"]):
        proc = mgn_process(*args, "--checks-dir", str(directory), *ISOLATED)
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout)  # nothing but the document
        assert "IMPORT-PRINT" in proc.stderr and "FD-WRITE" in proc.stderr, args
    proc = mgn_process("verify", "-o", "junit", "--checks-dir", str(directory), *ISOLATED)
    assert proc.stdout.startswith("<?xml"), proc.stdout[:80]


def test_a_plugin_import_error_never_quotes_a_configured_secret(mgn_process, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_boom=f'raise RuntimeError("import failed {SECRET}")\n')
    config = tmp_path / "config.yaml"
    config.write_text(f"api:\n  token: {SECRET}\n")
    report = tmp_path / "r.json"
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config),
                       "--json", str(report))
    assert proc.returncode == 2
    assert "failed to import: RuntimeError: import failed ***" in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout + report.read_text()


def test_a_raising_add_settings_hook_never_quotes_a_secret_from_the_environment(mgn_process, checks_dir) -> None:
    directory = checks_dir(check_settings='''
import os
def mgn_add_settings(settings):
    raise ValueError("cannot declare: " + os.environ["MGN_API_TOKEN"])
''')
    proc = mgn_process("verify", "--checks-dir", str(directory), *ISOLATED, env={"MGN_API_TOKEN": SECRET})
    assert proc.returncode == 2
    assert "mgn_add_settings raised ValueError: cannot declare: ***" in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout


def test_config_waivers_that_match_nothing_warn_and_a_bad_date_names_the_file(mgn, checks_dir, tmp_path) -> None:
    directory = checks_dir(check_w="def check_one():\n    assert False, 'broken'\n")
    config = tmp_path / "c.yaml"
    config.write_text("verify:\n  ignore_preflight_errors: [w.onee]\n"
                      "  waivers:\n    - {id: w.one, reason: known}\n    - {id: w.tow, reason: typo}\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config))
    assert run.statuses == {"w.one": "waived"}
    assert "mgn: warning: verify.waivers 'w.tow' matches no check (did you mean 'w.one'?)" in run.stderr
    assert "mgn: warning: verify.ignore_preflight_errors 'w.onee' matches no check" in run.stderr
    config.write_text('verify:\n  waivers:\n    - {id: w.one, reason: x, expires: "2020-13-45"}\n')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config))
    assert run.exit_code == 2
    assert f"mgn: error: {config}, key 'verify.waivers[0]': 'expires' must be a date" in run.stderr


def test_a_cluster_password_of_the_wrong_type_is_refused_without_echoing_it(mgn, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("clusters:\n  - id: c1\n    kubeconfig: /x\n    rethinkdb: {password: {x: topsecret99}}\n")
    run = mgn("verify", "rethinkdb", "--config", str(config), report=False)
    assert run.exit_code == 2
    assert "clusters[0].rethinkdb.password" in run.stderr and "expected a string, got dict" in run.stderr
    assert "topsecret99" not in run.stderr + run.stdout


def test_an_id_with_a_comma_can_be_waived_and_a_directory_is_not_a_report_path(mgn, checks_dir, tmp_path) -> None:
    directory = checks_dir(check_cm='''
from mgn_verify import check, parametrize

@parametrize("pair", ["a,b"])
@check(id="cm.x")
def check_x(pair):
    assert False, pair
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--ignore-preflight-errors=cm.x[a,b]")
    assert run.statuses == {"cm.x[a,b]": "waived"}, run.stderr
    assert "matches no check" not in run.stderr
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(tmp_path / "newdir") + "/",
              report=False)
    assert run.exit_code == 2 and "is a directory" in run.stderr
    assert not (tmp_path / "newdir").exists()


def test_a_command_line_click_rejects_still_writes_the_requested_reports(mgn_process, tmp_path) -> None:
    for bad in (["--bogus"], ["--timeout", "0"], ["--concurrency=0"]):
        out, junit = tmp_path / "r.json", tmp_path / "r.xml"
        proc = mgn_process("verify", "system", *bad, "-o", "json", "--json", str(out), "--junit", str(junit))
        assert proc.returncode == 2, (bad, proc.stderr)
        assert proc.stderr.count("mgn: error:") == 1, proc.stderr
        for text in (proc.stdout, out.read_text()):
            data = json.loads(text)
            assert data["summary"]["exit_code"] == 2 and len(data["summary"]["errors"]) == 1, bad
        assert junit.read_text().startswith("<?xml")
        out.unlink()
        junit.unlink()
