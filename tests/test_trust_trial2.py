"""Found by a second adversarial trial (issue 9): secrets in the catalogue commands and in values
a later source overrode, URL passwords written in config, short secrets in ``config show``,
reports still written when a report option is bad, the same checks directory given twice."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ISOLATED

TOKEN = "envTOK3344xy"
FILE_TOKEN = "tokAPI7x9Q2zz"
URL_PASSWORD = "Pw@At@Sign9"

PARAMETRIZED = f'''
from mgn_verify import check, parametrize

@parametrize("v", ["{TOKEN}", "{FILE_TOKEN}", "{URL_PASSWORD}"])
@check(id="t.param")
def check_param(v):
    assert False, "saw " + v
'''


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(f"api:\n  token: {FILE_TOKEN}\n  base_url: https://alice:{URL_PASSWORD}@127.0.0.1:1\n"
                      "clusters:\n  - id: c1\n    kubeconfig: /x\n    rethinkdb: {password: pq}\n")
    return config


def test_no_output_shows_a_secret_or_a_config_url_password(mgn_process, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_t=PARAMETRIZED)
    config = _config(tmp_path)
    env = {"MGN_API_TOKEN": TOKEN}  # overrides the file's token: both stay secrets
    commands = [["verify", "t", "--json", str(tmp_path / "r.json")], ["verify", "list", "t"],
                ["verify", "list", "t", "--json"], ["verify", "graph", "t"],
                ["verify", "graph", "t", "--format", "mermaid"], ["verify", "explain", "t.param"]]
    for command in commands:
        proc = mgn_process(*command, "--checks-dir", str(directory), *ISOLATED, "--config", str(config), env=env)
        assert proc.returncode in (0, 1), (command, proc.stderr)
        shown = proc.stdout + proc.stderr + ((tmp_path / "r.json").read_text() if "--json" in command[2:] else "")
        for secret in (TOKEN, FILE_TOKEN, URL_PASSWORD, "At@Sign9"):
            assert secret not in shown, (command, secret)
        assert "t.param[***]" in shown, command


def test_config_show_masks_a_short_secret_inside_a_list_whole(mgn, tmp_path: Path) -> None:
    run = mgn("config", "show", "--json", *ISOLATED, "--config", str(_config(tmp_path)))
    assert run.exit_code == 0, run.stderr
    rows = {row["key"]: row["value"] for row in json.loads(run.stdout)}
    assert rows["clusters"] == [{"id": "c1", "kubeconfig": "/x", "rethinkdb": {"password": "***"}}]


def test_a_bad_report_option_still_writes_the_usable_reports(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_ok="def check_ok():\n    pass\n")
    junit, out = tmp_path / "j.xml", tmp_path / "r.json"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(tmp_path / "jd") + "/",
              "--junit", str(junit), report=False)
    assert run.exit_code == 2 and "is a directory" in run.stderr
    assert "is a directory" in junit.read_text()
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--json", str(out), "-o", "json", "-o", "xml",
              report=False)
    assert run.exit_code == 2
    assert json.loads(out.read_text())["summary"]["exit_code"] == 2


def test_the_same_checks_directory_twice_is_loaded_once(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_ok="def check_ok():\n    pass\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"verify:\n  checks_dirs: [{directory}]\n")
    run = mgn("verify", "--checks-dir", str(directory), "--checks-dir", f"{directory}/", *ISOLATED,
              "--config", str(config))
    assert run.exit_code == 0, run.stderr
    assert run.statuses == {"ok.ok": "pass"}


def test_a_report_option_given_twice_is_a_usage_error(mgn_process, tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    proc = mgn_process("verify", "system", "--json", str(first), "--json", str(second))
    assert proc.returncode == 2
    assert "Invalid value for '--json': given 2 times" in proc.stderr
    assert not first.exists()  # the one kept says why nothing ran
    assert json.loads(second.read_text())["summary"]["exit_code"] == 2
