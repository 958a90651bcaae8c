"""Discovery: entry points (a real installed distribution), -p, -p no:, autoload switch, check dirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ISOLATED, REPO


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plugins/mgn-verify-example really installed (pip) into a directory used as PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO / "plugins" / "mgn-verify-example")],
                   check=True, capture_output=True)
    return target


def _fake_distribution(site: Path, name: str, entry: str, module_source: str) -> None:
    """A minimal installed distribution: dist-info with an entry point, and its module."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mgn_verify]\n{entry}\n")
    module = entry.split("=")[1].strip()
    (site / f"{module}.py").write_text(module_source)


def _report(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


def test_entry_point_plugin_is_discovered(mgn_process, example_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = mgn_process("verify", "acme", "--json", str(out), env={"PYTHONPATH": str(example_site)})
    assert proc.returncode == 0, proc.stderr
    statuses = {r["id"]: r["status"] for r in _report(out)["results"]}
    # acme.scratch.writable requires a built-in system check: it is pulled in and runs first.
    assert statuses == {"system.os.supported": "pass", "acme.api_key.set": "skip",
                        "acme.names.valid[alpha]": "pass", "acme.names.valid[beta]": "pass",
                        "acme.scratch.writable": "pass"}
    plugins = {p["name"]: p for p in _report(out)["run"]["plugins"]}
    assert plugins["acme"]["distribution"] == "mgn-verify-example"
    assert plugins["system"]["distribution"] == "mgn-verify"   # built-ins come through entry points too


def test_block_a_plugin_with_p_no(mgn_process, example_site: Path) -> None:
    proc = mgn_process("verify", "list", "-p", "no:acme", env={"PYTHONPATH": str(example_site)})
    assert proc.returncode == 0 and "acme." not in proc.stdout and "system.os.supported" in proc.stdout
    # Blocking a built-in layer its checks depend on is a clear error, not a crash.
    proc = mgn_process("verify", "-p", "no:system", env={"PYTHONPATH": str(example_site)})
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("mgn: error: check 'acme.scratch.writable' requires "
                                          "'system.os.supported', which matches no check")


def test_autoload_switch_keeps_only_own_plugins_unless_asked(mgn_process, example_site: Path) -> None:
    env = {"PYTHONPATH": str(example_site), "MGN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = mgn_process("verify", "list", env=env)
    assert "acme." not in proc.stdout and "system.os.supported" in proc.stdout
    proc = mgn_process("verify", "list", "-p", "acme", env=env)
    assert "acme.names.valid[alpha]" in proc.stdout


def test_p_imports_a_module_by_name(mgn_process, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "team_checks.py").write_text(
        "from mgn_verify import check\n@check(id='team.ok')\ndef check_ok(): return {'message': 'fine'}\n")
    proc = mgn_process("verify", "team", "-p", "team_checks", env={"PYTHONPATH": str(tmp_path / "site")})
    assert proc.returncode == 0, proc.stderr
    assert "team.ok" in proc.stdout
    proc = mgn_process("verify", "-p", "no_such_module_xyz")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("mgn: error: plugin 'no_such_module_xyz': "
                                   "no such module or entry point (given with -p)")


def test_broken_entry_point_is_one_line_exit_2_and_reports_are_written(mgn_process, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "broken", "broken = broken_plugin", "import does_not_exist_anywhere\n")
    out = tmp_path / "r.json"
    junit = tmp_path / "r.xml"
    proc = mgn_process("verify", "--json", str(out), "--junit", str(junit), env={"PYTHONPATH": str(site)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("mgn: error: plugin 'broken': entry point 'broken_plugin' failed to import: "
                                   "ModuleNotFoundError: No module named 'does_not_exist_anywhere'")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert _report(out)["summary"]["exit_code"] == 2
    assert "failed to import" in _report(out)["summary"]["errors"][0]
    assert junit.exists()


def test_unknown_hook_name_is_caught(mgn_process, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "typo", "typo = typo_plugin",
                       "def mgn_add_setting(settings):\n    pass\n")
    proc = mgn_process("verify", "list", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 2
    assert proc.stderr == ("mgn: error: plugin 'typo': unknown hook 'mgn_add_setting' "
                           "(did you mean 'mgn_add_settings'?)\n")


def test_plugin_hook_that_raises_names_the_plugin(mgn_process, tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "crashy", "crashy = crashy_plugin",
                       "def mgn_add_settings(settings):\n    raise KeyError('oops')\n")
    proc = mgn_process("verify", "list", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mgn: error: plugin 'crashy': mgn_add_settings raised KeyError: 'oops'"


def test_checks_dir_collects_undecorated_functions(mgn, checks_dir) -> None:
    directory = checks_dir(check_team='''
def check_tmp_writable():
    """/tmp is writable"""
def helper():  # not a check: wrong name
    raise AssertionError
def check_uses_default(x=3):
    assert x == 3
''')
    (directory / "sub").mkdir()
    (directory / "sub" / "check_nested.py").write_text("def check_deep():\n    pass\n")
    (directory / "not_a_check_file.py").write_text("def check_ignored():\n    assert False\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.statuses == {"nested.deep": "pass", "team.tmp_writable": "pass", "team.uses_default": "pass"}
    assert run.result("team.tmp_writable")["title"] == "/tmp is writable"


def test_checks_dir_from_config_and_programmatic_registration(mgn, tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "check_gen.py").write_text('''
from mgn_verify import check, hookimpl
@hookimpl
def mgn_register_checks(registry, config):
    for name in ("a", "b"):
        def probe(name=name):
            return {"message": f"probed {name}"}
        probe.__name__ = f"probe_{name}"
        registry.add_check(check(id=f"gen.{name}")(probe))
''')
    config = tmp_path / "c.yaml"
    config.write_text(f"verify:\n  checks_dirs: [{str(directory)!r}]\n")
    run = mgn("verify", "gen", "--config", str(config))
    assert run.statuses == {"gen.a": "pass", "gen.b": "pass"}


def test_broken_checks_file_names_the_file(mgn, checks_dir) -> None:
    directory = checks_dir(check_bad="def check_x(:\n")
    run = mgn("verify", "--checks-dir", str(directory))
    assert run.exit_code == 2
    assert run.stderr.startswith(f"mgn: error: plugin '{directory / 'check_bad.py'}': failed to import: SyntaxError")


def test_checks_dirs_from_environment_and_set(mgn, tmp_path: Path) -> None:
    for name in ("env_dir", "set_dir"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"check_{name}.py").write_text("def check_ok():\n    pass\n")
    env = {"MGN_VERIFY_CHECKS_DIRS": str(tmp_path / "env_dir")}
    run = mgn("verify", "--set", f"verify.checks_dirs={tmp_path / 'set_dir'}", *ISOLATED,
              env=env)
    assert run.statuses == {"set_dir.ok": "pass"}     # --set wins over the environment
    run = mgn("verify", *ISOLATED, env=env)
    assert run.statuses == {"env_dir.ok": "pass"}


def test_register_hook_sees_the_selection_and_checks_see_the_plan(mgn, tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "check_sel.py").write_text('''
from mgn_verify import check, hookimpl
@hookimpl
def mgn_register_checks(registry, selection):
    def probe(plan):
        return {"message": f"registered for {','.join(selection)}; plan {','.join(plan.selection)}"}
    registry.add_check(check(id="sel.seen")(probe))
''')
    run = mgn("verify", "sel", "--checks-dir", str(directory))
    assert run.result("sel.seen")["message"] == "registered for sel; plan sel"
    run = mgn("verify", "--checks-dir", str(directory), "--check", "sel.*")
    assert run.result("sel.seen")["message"] == "registered for all; plan all"
