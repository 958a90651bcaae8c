"""Configuration: precedence, provenance, one-line errors, unknown-key suggestions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import ISOLATED


def _show(mgn, *args: str, env: dict[str, str] | None = None) -> dict[str, tuple[object, str]]:  # type: ignore[no-untyped-def]
    run = mgn("config", "show", "--json", *args, env=env)
    assert run.exit_code == 0, run.stderr
    return {row["key"]: (row["value"], row["source"]) for row in json.loads(run.stdout)}


def test_precedence_defaults_file_env_cli(mgn, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("api:\n  base_url: https://file:8090\n  timeout: 5\nverify:\n  timeout: 3\n"
                      "defaults:\n  cluster: from-file\n")
    rows = _show(mgn, "--config", str(config), "--set", "verify.timeout=7.5",
                 env={"MGN_API_URL": "https://env:8090", "MGN_DEFAULT_CLUSTER": "from-env"})
    assert rows["api.base_url"] == ("https://env:8090", "env:MGN_API_URL")
    assert rows["api.timeout"] == (5.0, f"file:{config}")
    assert rows["verify.timeout"] == (7.5, "cli")
    assert rows["defaults.cluster"] == ("from-env", "env:MGN_DEFAULT_CLUSTER")
    assert rows["verify.concurrency"] == (32, "default")


def test_config_path_from_environment_and_derived_env_names(mgn, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("system:\n  min_cpus: 1\n")
    rows = _show(mgn, env={"MGN_CONFIG": str(config), "MGN_VERIFY_CONCURRENCY": "4"})
    assert rows["system.min_cpus"] == (1, f"file:{config}")
    assert rows["verify.concurrency"] == (4, "env:MGN_VERIFY_CONCURRENCY")


@pytest.mark.parametrize(("text", "message"), [
    ("api:\n  base_url: [unclosed\n", "{path}:3:1: malformed YAML: expected ',' or ']', but got '<stream end>'"),
    ("verify:\n  timeout: soon\n", "{path}, key 'verify.timeout': expected float, got str 'soon'"),
    ("- just\n- a list\n", "{path}: the top level must be a mapping of sections, not list"),
    ("rethinkdb:\n  password: 12345\n", "{path}, key 'rethinkdb.password': expected str, got int"),
    ("verify: fast\n", "{path}, key 'verify': expected a mapping of settings, got str"),
])
def test_bad_config_is_one_line_exit_2(mgn, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    run = mgn("verify", "--config", str(config), *ISOLATED, report=False)
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: {message.format(path=config)}\n"
    assert "12345" not in run.stderr     # a secret's wrong value is not echoed either


def test_bad_environment_value_names_the_variable(mgn) -> None:
    run = mgn("config", "show", env={"MGN_VERIFY_CONCURRENCY": "many"})
    assert run.exit_code == 2
    assert run.stderr == ("mgn: error: environment MGN_VERIFY_CONCURRENCY, key 'verify.concurrency': "
                          "expected int, got str 'many'\n")


def test_missing_explicit_config_file(mgn, tmp_path: Path) -> None:
    run = mgn("config", "show", "--config", str(tmp_path / "nope.yaml"))
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: {tmp_path / 'nope.yaml'}: config file not found\n"


def test_unknown_key_warns_with_the_closest_known_key(mgn, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("system:\n  min_cpu: 4\n")
    run = mgn("config", "show", "--config", str(config))
    assert run.exit_code == 0
    assert f"mgn: warning: {config}: unknown key 'system.min_cpu' (did you mean 'system.min_cpus'?)" in run.stderr


def test_empty_section_is_fine(mgn, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("verify:\nsystem: {}\n")
    assert _show(mgn, "--config", str(config))["verify.timeout"] == (10.0, "default")


def test_unknown_set_key_is_a_warning_like_in_a_file(mgn) -> None:
    run = mgn("config", "show", "--set", "verify.timout=3")
    assert run.exit_code == 0
    assert run.stderr == ("mgn: warning: command line: unknown key 'verify.timout' "
                          "(did you mean 'verify.timeout'?)\n")


def test_waivers_from_config_with_reason_and_expiry(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_w='''
from mgn_verify import check
@check(id="w.active")
def check_active(): assert False, "broken"
@check(id="w.expired")
def check_expired(): assert False, "broken too"
''')
    config = tmp_path / "c.yaml"
    config.write_text("verify:\n  waivers:\n"
                      "    - {id: w.active, reason: 'ticket OPS-1', expires: 2999-01-01}\n"
                      "    - {id: 'w.exp*', reason: old, expires: 2001-01-01}\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config))
    assert run.result("w.active")["status"] == "waived"
    assert run.result("w.active")["message"] == "would be fail: broken; waived: ticket OPS-1"
    assert run.result("w.active")["waiver"] == {"pattern": "w.active", "reason": "ticket OPS-1",
                                                "expires": "2999-01-01", "source": "config", "expired": False}
    assert run.result("w.expired")["status"] == "fail"
    assert run.result("w.expired")["message"] == "broken too (waiver expired on 2001-01-01)"
    assert run.exit_code == 1
    ignore_all = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--ignore-preflight-errors=all")
    assert set(ignore_all.statuses.values()) == {"waived"} and ignore_all.exit_code == 0


def test_structured_values_from_text(mgn, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows = _show(mgn, "--set", 'network.tcp_endpoints=["127.0.0.1:1", "127.0.0.1:2"]',
                 "--set", 'network.registry_auth={"r.example": {"username": "u", "password": "p4ssw0rd"}}',
                 env={"MGN_VERIFY_CHECKS_DIRS": f"{tmp_path / 'a'}, {tmp_path / 'b'}"})
    assert rows["network.tcp_endpoints"][0] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert rows["verify.checks_dirs"] == ([str(tmp_path / "a"), str(tmp_path / "b")], "env:MGN_VERIFY_CHECKS_DIRS")
    assert rows["network.registry_auth"][0] == "***"
    bad = mgn("config", "show", "--set", "network.registry_auth={oops")
    assert bad.exit_code == 2
    assert bad.stderr == "mgn: error: command line, key 'network.registry_auth': expected dict, got str\n"
