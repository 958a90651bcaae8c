"""The plugin authors' test kit (mgn_verify.testing): MgnKit, VerifyRun, the hook recorder, the
mgn_kit/mgn_hooks fixtures, and the example plugin's own suite written with them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mgn_verify.testing
from mgn_verify import _plugins
from mgn_verify.testing import MgnKit, record_hooks
from tests.helpers import ISOLATED, REPO, wait_until

pytest_plugins = ["pytester"]

TEAM_CHECKS = """
    from mgn_verify import skip, warn

    def mgn_add_settings(settings):
        settings.add("team.min_nodes", 1, help="nodes the team needs")

    def check_nodes(config):
        return {"message": f"need {config['team.min_nodes']}"}

    def check_soon():
        warn("certificate expires in 9 days")

    def check_gpu():
        skip("no GPU here")

    def check_quota():
        assert 2 >= 3

    def check_api():
        raise RuntimeError("boom")
"""
TEAM_STATUSES = {"team.nodes": "pass", "team.soon": "warn", "team.gpu": "skip", "team.quota": "fail",
                 "team.api": "error"}


def test_in_process_and_process_runs_agree(tmp_path: Path) -> None:
    kit = MgnKit(tmp_path / "kit")
    assert kit.write_checks(check_team=TEAM_CHECKS) == kit.checks_dir == kit.path / "checks"
    assert kit.write_config({"team": {"min_nodes": 3}}) == kit.config_path
    inside, outside = kit.verify(*ISOLATED), kit.verify(*ISOLATED, process=True)
    for run in (inside, outside):
        assert run.exit_code == 1, run.stderr            # a check failed
        assert run.statuses() == TEAM_STATUSES
        assert run.report is not None and run.report["run"]["config_file"] == str(kit.config_path)
    assert inside.messages() == outside.messages()
    assert {key: inside.messages()[key] for key in ("team.nodes", "team.soon", "team.gpu", "team.api")} == {
        "team.nodes": "need 3", "team.soon": "certificate expires in 9 days", "team.gpu": "no GPU here",
        "team.api": "RuntimeError: boom"}
    assert inside.result("team.nodes")["status"] == "pass"
    with pytest.raises(KeyError):
        inside.result("team.absent")
    assert sorted(p.name for p in kit.path.glob("report-*.json")) == ["report-0.json", "report-1.json"]
    assert "team.quota" in inside.stdout and "team.quota" in outside.stdout


def test_exit_codes_errors_and_other_commands(tmp_path: Path) -> None:
    kit = MgnKit(tmp_path)
    kit.write_checks(check_ok="def check_fine():\n    return {'message': 'fine'}\n")
    assert kit.verify(*ISOLATED).exit_code == 0
    for process in (False, True):
        bad = kit.verify("--no-such-option", process=process)
        assert bad.exit_code == 2
        assert bad.stderr.startswith("mgn: error: No such option") and bad.stderr.count("\n") == 1
        assert bad.report is not None and bad.report["summary"]["exit_code"] == 2  # still written
    listed = kit.verify("list", *ISOLATED)
    assert (listed.exit_code, listed.report) == (0, None) and "ok.fine" in listed.stdout
    as_json = kit.verify(*ISOLATED, "--json", "-")      # the report on stdout, still parsed
    assert as_json.statuses() == {"ok.fine": "pass"}
    assert kit.run("--version").stdout.startswith("mgn, version")
    # A global option exports itself to os.environ; in-process, not beyond the run.
    before = os.environ.get("MGN_API_URL")
    assert kit.run("--api-url", "https://example.invalid", "verify", "list").exit_code == 0
    assert os.environ.get("MGN_API_URL") == before


def test_write_checks_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # the suite may run with PYTHONDONTWRITEBYTECODE
    kit = MgnKit(tmp_path)
    with pytest.raises(ValueError, match="'disk': the name must start with 'check_'"):
        kit.write_checks(disk="def check_x(): pass")
    # The user's own config is never read: MGN_CONFIG is os.devnull unless the kit wrote one.
    home = tmp_path / "home"
    (home / ".metaguildnet").mkdir(parents=True)
    (home / ".metaguildnet" / "config.yaml").write_text("team:\n  word: from-home\n")
    monkeypatch.setenv("HOME", str(home))
    source = """
        def mgn_add_settings(settings):
            settings.add("team.word", "default", help="a word")

        def check_word(config):
            return {"message": config["team.word"] + "-%s"}
    """
    kit.write_checks(check_team=source % "a")
    # An old source is cached; rewritten with the same size and, as within a coarse mtime tick, the
    # same mtime, the cache still looks fresh: the new code runs only because write_checks drops it.
    team, old = kit.checks_dir / "check_team.py", time.time_ns() - 60 * 10**9
    os.utime(team, ns=(old, old))
    assert kit.verify(*ISOLATED).messages() == {"team.word": "default-a"}
    assert list(kit.checks_dir.glob("__pycache__/check_team.*.pyc"))
    kit.write_checks(check_team=source % "b")
    os.utime(team, ns=(old, old))
    kit.write_config("""
        team:
          word: from-yaml
    """)
    assert kit.verify(*ISOLATED).messages() == {"team.word": "from-yaml-b"}
    assert kit.verify(*ISOLATED, env={"MGN_TEAM_WORD": "from-env"}).messages() == {"team.word": "from-env-b"}


def test_a_hanging_run_is_killed_and_misuse_is_named(tmp_path: Path) -> None:
    """A process run past its timeout is killed and raises a TimeoutError with the output so far
    (not subprocess's bare TimeoutExpired); a config that is no mapping or text and an id that did
    not run are errors naming what is accepted / what ran."""
    kit = MgnKit(tmp_path)
    kit.write_checks(check_hang="""
        import os, time
        from pathlib import Path
        from mgn_verify import check

        @check(timeout=600)
        def check_forever():
            Path("started").write_text(str(os.getpid()))
            time.sleep(600)
    """)
    kit.write_config({"verify": {"waivers": [{"id": "x.gone", "reason": "removed"}]}})  # warns at load
    with pytest.raises(TimeoutError, match=r"^mgn verify did not finish within 1\.5 s \(killed\); its output so far:"
                       ) as caught:
        kit.verify(process=True, timeout=1.5)  # no args: every layer (a bare verify() once crashed)
    started = tmp_path / "started"
    if started.exists():  # the check was reached (a slow machine may not get there): mgn had warned first
        assert "mgn: warning: verify.waivers 'x.gone' matches no check" in str(caught.value)
        pid = int(started.read_text())
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), what="the killed mgn process gone")
    for bad in (None, 3, b"team: {}"):
        with pytest.raises(TypeError, match=r"takes a mapping \(dumped as YAML\) or YAML text \(str\), not "):
            kit.write_config(bad)  # type: ignore[arg-type]
    kit.write_checks(check_hang="def check_a(): pass\ndef check_b(): pass\n")
    with pytest.raises(KeyError, match=r"'k.nope' did not run; the checks that ran: hang.a, hang.b"):
        kit.verify(*ISOLATED).result("k.nope")


def test_recorder_sees_every_hook_with_its_plugins_and_stops_after(tmp_path: Path) -> None:
    kit = MgnKit(tmp_path)
    checks = kit.write_checks(check_team="""
        seen = []

        def mgn_result(result):
            seen.append(result.id)

        def check_one():
            pass

        def check_two():
            pass
    """)
    plugin = str(checks / "check_team.py")
    with record_hooks() as outer:
        with record_hooks() as inner:
            assert kit.verify(*ISOLATED).exit_code == 0
        assert kit.verify(*ISOLATED).exit_code == 0
    assert _plugins.MANAGER_LISTENERS == []
    names = inner.names()
    for hook in ("mgn_add_settings", "mgn_configure", "mgn_register_fixtures", "mgn_register_checks",
                 "mgn_register_reporters", "mgn_run_start", "mgn_result", "mgn_run_finish"):
        assert hook in names, hook
    assert names.index("mgn_add_settings") < names.index("mgn_register_checks") < names.index("mgn_run_start") \
        < names.index("mgn_result") < names.index("mgn_run_finish")
    results = inner.get("mgn_result")  # called from the runner's worker threads
    assert sorted(call.kwargs["result"].id for call in results) == ["team.one", "team.two"]
    assert {call.plugins for call in results} == {(plugin,)}
    assert ("core",) in {call.plugins for call in inner.get("mgn_add_settings")}
    assert ("json",) in {call.plugins for call in inner.get("mgn_register_reporters")}
    assert len(outer.calls) == 2 * len(inner.calls)    # the outer one saw both runs
    kit.verify(*ISOLATED)
    assert len(outer.calls) == 2 * len(inner.calls)    # neither records after its block


def test_fixtures_in_a_pytest_run(pytester: pytest.Pytester) -> None:
    """The example of mgn_verify.testing's docstring, run by pytest with the mgn_kit/mgn_hooks fixtures."""
    doc = mgn_verify.testing.__doc__ or ""
    example = textwrap.dedent(doc.split("Example::\n")[1].split("\n\n``make_config``")[0])
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_kit_modules_import_no_engine() -> None:
    """What pytest imports into every run once mgn-verify is installed (the hub and each module
    in its ``pytest_plugins``), and the kit, import none of the engine, the lab or PyYAML."""
    code = textwrap.dedent("""
        import importlib, sys
        hub = importlib.import_module("mgn_verify.kit.pytest_plugin")
        for name in [*hub.pytest_plugins, "mgn_verify.testing"]:
            importlib.import_module(name)
        print(hub.pytest_plugins)
        print(sorted(m for m in ("mgn_verify._session", "mgn_verify._plugins", "mgn_verify.cli", "click", "yaml",
                                 "mgn_verify.lab._lab") if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    plugins, loaded = proc.stdout.splitlines()
    assert "mgn_verify.lab.pytest_plugin" in plugins and "mgn_verify.kit.verify_items" in plugins
    assert loaded == "[]"
    assert mgn_verify.testing.__all__ == ["HookCall", "HookRecorder", "MgnCheckWarning", "MgnKit", "MgnRunWarning",
                                          "VerifyRun", "make_config", "record_hooks", "run_verify"]


@pytest.mark.slow
def test_example_plugin_suite_passes_with_the_kit(tmp_path: Path) -> None:
    """plugins/mgn-verify-example really installed, then its own tests (written with the kit) run
    by pytest inside a copy of it, so nothing is written into the repository."""
    copy = tmp_path / "mgn-verify-example"
    shutil.copytree(REPO / "plugins" / "mgn-verify-example", copy,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(copy)], check=True, capture_output=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy,
                          env={**env, "PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("5 passed")
