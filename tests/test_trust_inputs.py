"""Bad values, from every source, are one line and exit 2; typos are warnings with a suggestion;
exact ids always match themselves; setup hooks are called through pluggy (issue 9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import ISOLATED

# Two checks whose ids a glob reading of the other's brackets would confuse: ``x.y[a-b]`` as a
# glob matches ``x.ya``, and ``net.tcp[10.0.0.5:6443]`` as a glob matches ``net.tcp1``.
BRACKETS = '''
from mgn_verify import check, parametrize

@parametrize("v", ["a-b"])
@check(id="x.y")
def check_y(v): assert False, "y " + v

@check(id="x.ya")
def check_ya(): assert False, "ya"

@parametrize("endpoint", ["10.0.0.5:6443"])
@check(id="net.tcp")
def check_tcp(endpoint): assert False, endpoint

@check(id="net.tcp1")
def check_tcp1(): assert False, "tcp1"

@check(id="z.after", requires=["x.y[a-b]"])
def check_after(): pass
'''


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if not line.startswith("mgn: warning:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- 1. --set without '=' ----------------------------------------------------------------------


@pytest.mark.parametrize(("command", "pair", "problem"), [
    (("verify", *ISOLATED), "verify.timeout", "got 'verify.timeout' (no '=')"),
    (("verify", *ISOLATED), "=5", "got an empty KEY"),
    (("config", "show"), " =5", "got an empty KEY"),
    (("verify", "list"), "verify.timeout", "got 'verify.timeout' (no '=')"),
])
def test_set_without_a_key_or_equals_is_one_line_exit_2(mgn_process, command: tuple[str, ...], pair: str,
                                                         problem: str) -> None:
    run = mgn_process(*command, "--set", pair)
    assert run.returncode == 2
    assert _one_line(run.stderr).startswith(f"mgn: error: Invalid value for '--set': expects KEY=VALUE, {problem}")


def test_set_with_a_colon_never_echoes_the_value(mgn_process) -> None:
    run = mgn_process("verify", *ISOLATED, "--set", "api.token:s3cr3t-t0ken-value")
    assert run.returncode == 2
    line = _one_line(run.stderr)
    assert "s3cr3t" not in run.stderr + run.stdout
    assert "got 'api.token:…' (did you mean 'api.token=…'?)" in line


# -- 2. impossible dates -----------------------------------------------------------------------


def test_impossible_waiver_date_names_file_line_and_key(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_w="def check_ok(): pass\n")
    config = tmp_path / "c.yaml"
    config.write_text("verify:\n  waivers:\n    - id: w.ok\n      reason: r\n      expires: 2020-13-45\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config))
    assert run.exit_code == 2
    assert _one_line(run.stderr) == (f"mgn: error: {config}:5:16, key 'verify.waivers[0].expires': "
                                     "2020-13-45 is not a valid date (use YYYY-MM-DD, or quote it)")
    assert run.report is not None and run.report["summary"]["exit_code"] == 2


@pytest.mark.parametrize("command", [("config", "show"), ("config", "show", "--json"), ("verify", "list")])
def test_impossible_date_anywhere_in_the_file(mgn, tmp_path: Path, command: tuple[str, ...]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("system:\n  role: 2020-13-45\n")
    run = mgn(*command, *ISOLATED, "--config", str(config))
    assert run.exit_code == 2
    assert _one_line(run.stderr) == (f"mgn: error: {config}:2:9, key 'system.role': "
                                     "2020-13-45 is not a valid date (use YYYY-MM-DD, or quote it)")


def test_valid_dates_still_work(mgn, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("verify:\n  waivers:\n    - {id: x, reason: r, expires: 2999-01-31}\n")
    run = mgn("config", "show", "--json", *ISOLATED, "--config", str(config))
    assert run.exit_code == 0, run.stderr
    rows = {row["key"]: row["value"] for row in json.loads(run.stdout)}
    assert rows["verify.waivers"] == [{"id": "x", "reason": "r", "expires": "2999-01-31"}]


# -- 3. ranges, from every source ------------------------------------------------------------


@pytest.mark.parametrize(("source", "key", "value", "message"), [
    ("file", "verify.timeout", "0", "must be > 0, got 0.0"),
    ("file", "verify.timeout", "-1", "must be > 0, got -1.0"),
    ("file", "verify.timeout", ".nan", "must be a finite number, got nan"),
    ("file", "verify.timeout", ".inf", "must be a finite number, got inf"),
    ("file", "verify.concurrency", "0", "must be >= 1, got 0"),
    ("env", "verify.concurrency", "-5", "must be >= 1, got -5"),
    ("env", "verify.timeout", "nan", "must be a finite number, got nan"),
    ("set", "verify.timeout", "nan", "must be a finite number, got nan"),
    ("set", "verify.timeout", "0", "must be > 0, got 0.0"),
    ("set", "api.timeout", "-3", "must be > 0, got -3.0"),
    ("set", "rethinkdb.port", "70000", "must be <= 65535, got 70000"),
])
def test_ranges_are_checked_for_every_source(mgn, tmp_path: Path, source: str, key: str, value: str,
                                             message: str) -> None:
    config = tmp_path / "c.yaml"
    section, name = key.split(".")
    config.write_text(f"{section}:\n  {name}: {value}\n" if source == "file" else "")
    env_name = "MGN_" + key.upper().replace(".", "_")
    args = ["--set", f"{key}={value}"] if source == "set" else []
    run = mgn("verify", *ISOLATED, "--config", str(config), *args, report=False,
              env={env_name: value} if source == "env" else None)
    where = {"file": str(config), "env": f"environment {env_name}", "set": "command line"}[source]
    assert run.exit_code == 2
    assert _one_line(run.stderr) == f"mgn: error: {where}, key '{key}': {message}"


def test_flags_go_through_the_same_validation(mgn) -> None:
    run = mgn("verify", *ISOLATED, "--timeout", "nan", report=False)
    assert run.exit_code == 2
    assert "Traceback" not in run.stderr and "nan" in _one_line(run.stderr)


PLUGIN_SETTINGS = '''
from mgn_verify import hookimpl

@hookimpl
def mgn_add_settings(settings):
    settings.add("acme.level", 3, min=1, max=5, help="1..5")
    settings.add("acme.mode", "fast", choices=["fast", "slow"])
    settings.add("acme.ratio", 0.5, min=0.0, max=1.0)
    settings.add("acme.limit", float("inf"), finite=False)

def check_level(config):
    return {"message": f"level {config['acme.level']} mode {config['acme.mode']} limit {config['acme.limit']}"}
'''


@pytest.mark.parametrize(("pair", "message"), [
    ("acme.level=9", "must be <= 5, got 9"),
    ("acme.level=0", "must be >= 1, got 0"),
    ("acme.mode=medium", "must be one of 'fast', 'slow', got 'medium'"),
    ("acme.ratio=1.5", "must be <= 1.0, got 1.5"),
])
def test_plugins_declare_ranges_and_choices(mgn, checks_dir, pair: str, message: str) -> None:
    directory = checks_dir(check_acme=PLUGIN_SETTINGS)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", pair)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == f"mgn: error: command line, key '{pair.split('=')[0]}': {message}"


def test_plugin_ranges_accept_good_values_and_opt_in_infinity(mgn, checks_dir) -> None:
    directory = checks_dir(check_acme=PLUGIN_SETTINGS)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", "acme.level=5",
              "--set", "acme.mode=slow", "--set", "acme.limit=inf")
    assert run.exit_code == 0, run.stderr
    assert run.result("acme.level")["message"] == "level 5 mode slow limit inf"


def test_a_default_outside_its_own_range_is_a_plugin_error(mgn, checks_dir) -> None:
    directory = checks_dir(check_bad='''
def mgn_add_settings(settings):
    settings.add("bad.level", 0, min=1)
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == (f"mgn: error: plugin '{directory / 'check_bad.py'}': mgn_add_settings raised "
                                     "ValueError: setting 'bad.level': default must be >= 1, got 0")


# -- 4. typos are warnings with the closest match --------------------------------------------


def test_unknown_set_key_is_a_warning_with_a_suggestion(mgn) -> None:
    run = mgn("config", "show", *ISOLATED, "--set", "verify.timout=3")
    assert run.exit_code == 0
    assert ("mgn: warning: command line: unknown key 'verify.timout' (did you mean 'verify.timeout'?)"
            in run.stderr)


def test_unknown_mgn_environment_variable_warns(mgn) -> None:
    run = mgn("config", "show", *ISOLATED, env={"MGN_VERIFY_TIMOUT": "3", "MGN_DISABLE_PLUGIN_AUTOLOAD": "0",
                                     "MGN_LAB_STATE_DIR": "/tmp"})
    assert run.exit_code == 0
    warnings = [line for line in run.stderr.splitlines() if line.startswith("mgn: warning:")]
    assert warnings == ["mgn: warning: environment variable MGN_VERIFY_TIMOUT matches no setting "
                        "(did you mean 'MGN_VERIFY_TIMEOUT'?)"]


def test_typos_in_skip_ignore_and_blocked_plugins_warn_and_the_run_goes_on(mgn, checks_dir) -> None:
    directory = checks_dir(check_w="def check_disk(): pass\ndef check_swap(): pass\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-p", "no:kubernete",
              "--skip", "w.swp", "--ignore-preflight-errors", "w.dsk,w.swap")
    assert run.exit_code == 0, run.stderr
    assert run.statuses == {"w.disk": "pass", "w.swap": "pass"}
    warnings = [line for line in run.stderr.splitlines() if line.startswith("mgn: warning:")]
    assert warnings == [
        "mgn: warning: -p no:kubernete: no plugin is named 'kubernete' (did you mean 'kubernetes'?)",
        "mgn: warning: --skip 'w.swp' matches no check (did you mean 'w.swap'?)",
        "mgn: warning: --ignore-preflight-errors 'w.dsk' matches no check (did you mean 'w.disk'?)",
    ]


# -- 5. any exception at plugin import --------------------------------------------------------


@pytest.mark.parametrize(("body", "described"), [
    ("raise SystemExit(5)", "SystemExit: 5"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ("raise GeneratorExit('odd')", "GeneratorExit: odd"),
])
def test_any_exception_at_check_file_import_is_a_plugin_error(mgn, checks_dir, body: str, described: str) -> None:
    directory = checks_dir(check_boom=body + "\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == (f"mgn: error: plugin '{directory / 'check_boom.py'}': "
                                     f"failed to import: {described}")
    assert run.report is not None and run.report["summary"]["errors"]


def test_system_exit_in_a_p_module_is_a_plugin_error(mgn_process, tmp_path: Path) -> None:
    (tmp_path / "exiting_plugin.py").write_text("raise SystemExit(5)\n")
    run = mgn_process("verify", *ISOLATED, "-p", "exiting_plugin", env={"PYTHONPATH": str(tmp_path)})
    assert run.returncode == 2
    assert _one_line(run.stderr) == "mgn: error: plugin 'exiting_plugin': failed to import: SystemExit: 5"


# -- 6. layers ---------------------------------------------------------------------------------


def test_a_named_layer_without_checks_is_a_usage_error(mgn, checks_dir) -> None:
    directory = checks_dir(check_system="def check_extra(): pass\n")
    run = mgn("verify", "kubernetes", "system", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == ("mgn: error: layer 'kubernetes' has no checks "
                                     "(its plugin is blocked or not installed)")


def test_all_cannot_be_combined_with_layer_names(mgn, checks_dir) -> None:
    directory = checks_dir(check_system="def check_extra(): pass\n")
    run = mgn("verify", "all", "system", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == "mgn: error: 'all' cannot be combined with layer names (got: all system)"


# -- 7. exact ids with brackets ----------------------------------------------------------------


def test_exact_ids_with_brackets_select_only_themselves(mgn, checks_dir) -> None:
    directory = checks_dir(check_b=BRACKETS)
    only = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--check", "x.y[a-b]",
               "--check", "net.tcp[10.0.0.5:6443]")
    assert set(only.statuses) == {"x.y[a-b]", "net.tcp[10.0.0.5:6443]"}
    skipped = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--skip", "x.y[a-b]",
                  "--skip", "net.tcp[10.0.0.5:6443]")
    assert skipped.statuses["x.ya"] == "fail" and skipped.statuses["net.tcp1"] == "fail"
    assert skipped.statuses["x.y[a-b]"] == "skip"


def test_exact_ids_with_brackets_in_waivers_and_ignore(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_b=BRACKETS)
    config = tmp_path / "c.yaml"
    config.write_text("verify:\n  waivers:\n    - {id: 'x.y[a-b]', reason: known}\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--config", str(config),
              "--ignore-preflight-errors", "net.tcp[10.0.0.5:6443]")
    assert run.statuses["x.y[a-b]"] == "waived" and run.statuses["net.tcp[10.0.0.5:6443]"] == "waived"
    assert run.statuses["x.ya"] == "fail" and run.statuses["net.tcp1"] == "fail"


def test_a_glob_still_works_where_no_id_is_exact(mgn, checks_dir) -> None:
    directory = checks_dir(check_b=BRACKETS)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--check", "net.tcp[1]")
    assert set(run.statuses) == {"net.tcp1"}


def test_requires_with_brackets_names_exactly_that_check(mgn, checks_dir) -> None:
    directory = checks_dir(check_b=BRACKETS)
    run = mgn("verify", "list", "--json", "--checks-dir", str(directory), *ISOLATED)
    rows = {row["id"]: row for row in json.loads(run.stdout)}
    assert rows["z.after"]["requires"] == ["x.y[a-b]"]


# -- 8. a check that requires itself -----------------------------------------------------------


@pytest.mark.parametrize("requirement", ["a.x", "a.*"])
def test_a_check_requiring_itself_is_a_cycle(mgn, checks_dir, requirement: str) -> None:
    directory = checks_dir(check_a=f'''
from mgn_verify import check
@check(id="a.x", requires=["{requirement}"])
def check_x(): pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == "mgn: error: dependency cycle: a.x requires itself"


# -- 9. lab up while a lab runs ----------------------------------------------------------------


def test_lab_up_while_a_lab_runs_is_a_state_error(mgn_process, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "lab.json").write_text(json.dumps({"pid": os.getpid(), "config_path": "/x/mgn.yaml"}))
    run = mgn_process("lab", "up", "--state-dir", str(state_dir))
    assert run.returncode == 2
    assert _one_line(run.stderr) == (f"mgn: error: a lab is already running (pid {os.getpid()}, config "
                                     "/x/mgn.yaml); stop it with `mgn lab down`")


# -- 11. setup hooks go through pluggy ---------------------------------------------------------


WRAPPERS = '''
from mgn_verify import hookimpl

SEEN = []

@hookimpl(wrapper=True)
def mgn_configure(config):
    SEEN.append("new-style before")
    result = yield
    SEEN.append("new-style after")
    return result

@hookimpl(hookwrapper=True)
def mgn_register_checks(registry, config, selection):
    SEEN.append("old-style before")
    yield
    SEEN.append("old-style after")

def check_wrappers_ran():
    return {"message": ", ".join(SEEN)}
'''


def test_wrappers_on_setup_hooks_run(mgn, checks_dir) -> None:
    directory = checks_dir(check_wrap=WRAPPERS)
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 0, run.stderr
    message = run.result("wrap.wrappers_ran")["message"]
    assert message.startswith("new-style before, new-style after"), message
    assert "old-style before, old-style after" in message


@pytest.mark.parametrize("hook", ["mgn_configure(config)", "mgn_register_checks(registry, config, selection)"])
def test_a_raising_setup_hook_is_named_and_its_text_redacted(mgn, checks_dir, hook: str) -> None:
    directory = checks_dir(check_raise=f'''
from mgn_verify import hookimpl

def {hook}:
    raise RuntimeError("cannot use https://admin:hunter2-pass@db.example:8080/x with " + config["api.token"])
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", "api.token=tok-s3cr3t-value")
    assert run.exit_code == 2
    line = _one_line(run.stderr)
    name = hook.split("(")[0]
    assert line.startswith(f"mgn: error: plugin '{directory / 'check_raise.py'}': {name} raised RuntimeError: ")
    assert "hunter2" not in run.stderr and "tok-s3cr3t" not in run.stderr
    assert "https://admin:***@db.example:8080/x" in line


def test_a_raising_wrapper_is_named(mgn, checks_dir) -> None:
    directory = checks_dir(check_ok="def mgn_configure(config): pass\n", check_wrap='''
from mgn_verify import hookimpl

@hookimpl(wrapper=True)
def mgn_configure(config):
    yield
    raise ValueError("wrapper broke")
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert _one_line(run.stderr) == (f"mgn: error: plugin '{directory / 'check_wrap.py'}': "
                                     "mgn_configure raised ValueError: wrapper broke")


def test_a_real_ctrl_c_during_plugin_import_is_still_an_interruption(checks_dir, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "importing"
    directory = checks_dir(check_slow=f'''
import pathlib, time
pathlib.Path({str(marker)!r}).write_text("x")
time.sleep(30)
''')
    proc = subprocess.Popen([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir", str(directory), *ISOLATED],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "MGN_CONFIG": os.devnull})
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "failed to import" not in stderr and "Traceback" not in stderr
