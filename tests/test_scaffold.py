"""``mgn plugin new``: refusals (one line, exit 2, nothing created), an atomic write, two generated
plugins load together, and the real thing — the generated plugin installs editable as its next
steps say, ``mgn verify list`` shows it (and an edit at once), ``mgn verify`` runs it with the
built-in check it requires, its own pytest suite (written with the kit) passes, and its code is
ruff- and mypy-clean."""

from __future__ import annotations

import errno
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, Run

NAME, PKG = "acme-disk", "acme_disk"
FILES = ["pyproject.toml", "README.md", ".gitignore", f"{PKG}/__init__.py", f"{PKG}/checks.py",
         "tests/test_checks.py"]
RULE = "use lowercase letters and digits, starting with a letter, in parts joined by single '-' or '_'"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args, expected", [
    (["Acme"], f"invalid plugin name 'Acme': it has uppercase letters ({RULE}"),
    (["acme--disk"], "invalid plugin name 'acme--disk': '-' and '_' must join two parts"),
    (["9lives"], "invalid plugin name '9lives': it does not start with a letter"),
    (["über"], "invalid plugin name 'über': it has non-ASCII characters ('ü')"),
    (["acme.disk"], "invalid plugin name 'acme.disk': it has characters other than a-z, 0-9, '-' and '_'"),
    (["A" * 5000], "invalid plugin name 'AAAAAAAAAAAAAAAAAAAA…': longer than"),  # never echoed whole
    (["class"], "plugin name 'class' is a Python keyword"),
    (["system"], "plugin name 'system' is taken by mgn-verify itself"),
    (["mgn-verify"], "plugin name 'mgn-verify' is taken by mgn-verify itself"),
    (["all"], "plugin name 'all' is reserved: 'mgn verify all' selects every layer"),
    (["list"], "plugin name 'list' is reserved: 'mgn verify list' is a command"),
    (["history"], "plugin name 'history' is reserved: 'mgn verify history' is a command"),  # planned
    (["tests"], "plugin name 'tests' is reserved: the plugin would hold tests/tests"),
    (["conftest"], "plugin name 'conftest' is reserved: pytest imports every conftest.py"),
    (["my_checks"], "'{dir}/my-checks' already exists: 'my_checks' is the same package and distribution"),
    (["sqlite3"], "plugin name 'sqlite3': a module 'sqlite3' is already importable"),  # never shadow the stdlib
    (["taken"], "'{dir}/taken' already exists: mgn plugin new never overwrites"),    # even an empty dir
    (["acme", "--dir", "{dir}/missing"], "--dir '{dir}/missing' is not an existing directory"),
    pytest.param(["acme", "--dir", "/proc"], "cannot create a directory in '/proc': No such file or directory",
                 marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")),
])
def test_refusals_are_one_line_and_create_nothing(mgn: Callable[..., Run], tmp_path: Path, args: list[str],
                                                  expected: str) -> None:
    work = tmp_path / "work"
    (work / "taken").mkdir(parents=True)
    (work / "my-checks").mkdir()
    before = _tree(work)
    argv = [arg.format(dir=work) for arg in args]
    run = mgn("plugin", "new", *argv, *([] if "--dir" in argv else ["--dir", str(work)]))
    assert run.exit_code == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("mgn: error: " + expected.format(dir=work))
    assert _tree(work) == before


def test_a_failure_midway_leaves_nothing(mgn: Callable[..., Run], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write_text = Path.write_text

    def disk_full_at_checks(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "checks.py":  # the files before it are written by then
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_at_checks)
    work = tmp_path / "work"
    work.mkdir()
    run = mgn("plugin", "new", NAME, "--dir", str(work))
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: cannot create '{work / NAME}': No space left on device\n"
    assert list(work.iterdir()) == []  # neither acme-disk/ nor the hidden partial directory


def test_two_generated_plugins_load_and_run_together(mgn: Callable[..., Run], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Fixture names are global: each generated plugin's fixture carries its package's name.
    packages = ["scaffold_one", "scaffold_two"]
    for package in packages:
        made = mgn("plugin", "new", package.replace("_", "-"), "--dir", str(tmp_path))
        assert made.exit_code == 0, made.stderr
        monkeypatch.syspath_prepend(str(tmp_path / package.replace("_", "-")))
    checks = (tmp_path / "scaffold-one" / "scaffold_one" / "checks.py").read_text()
    assert "def scaffold_one_scratch_dir()" in checks and "share one namespace" in checks
    try:
        run = mgn("verify", "-p", "scaffold_one.checks", "-p", "scaffold_two.checks", *packages)
    finally:  # sys.path is restored; the modules imported from it must go too
        for module in [m for m in sys.modules if m.split(".")[0] in packages]:
            del sys.modules[module]
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.statuses == {"system.python.version": "pass", **{
        f"{package}.{check}": "pass" for package in packages
        for check in ("scratch.free", "scratch.roundtrip[1]", "scratch.roundtrip[1024]")}}


def _env() -> dict[str, str]:
    """Child processes import this tree's mgn_verify (an editable install may point elsewhere)."""
    path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "MGN_CONFIG": os.devnull, "PYTHONPATH": os.pathsep.join(path)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``mgn plugin new acme-disk --dir plugins`` (a real process, in a fresh directory), then the
    plugin installed by its own next step, ``pip install -e ./plugins/acme-disk``, into a venv on top
    of this Python's packages: (plugin dir, the venv's python, mgn's output)."""
    work = tmp_path_factory.mktemp("scaffold")
    (work / "plugins").mkdir()
    proc = subprocess.run([sys.executable, "-m", "mgn_verify", "plugin", "new", NAME, "--dir", "plugins"],
                          cwd=work, env=_env(), capture_output=True, text=True, check=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(work / "venv")],
                   check=True, capture_output=True)
    python = work / "venv" / "bin" / "python"
    step = next(line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("pip install"))
    pip = subprocess.run([str(python), "-m", *shlex.split(step), "--quiet", "--no-deps", "--no-build-isolation"],
                         cwd=work, env=_env(), capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return work / "plugins" / NAME, python, proc.stdout


@pytest.mark.slow  # venv, pip, six mgn processes, the generated suite and ruff
def test_generated_plugin_installs_lists_runs_and_passes_its_tests(generated: tuple[Path, Path, str],
                                                                   tmp_path: Path) -> None:
    root, python, output = generated
    where = f"plugins/{NAME}"
    assert output.splitlines() == [
        f"Created plugin {NAME} (package and layer {PKG}) in {where}/:",
        *(f"  {where}/{path}" for path in FILES),
        "", "Next steps:", f"  pip install -e ./{where}", f"  mgn verify list {PKG}", f"  mgn verify {PKG}",
        f"  cd {where} && pytest"]
    readme = (root / "README.md").read_text()
    assert "pip install -e ." in readme and "pip install ./" not in readme

    def mgn(*args: str) -> subprocess.CompletedProcess[str]:  # the venv's mgn: the plugin is installed there
        return subprocess.run([str(python), "-m", "mgn_verify", *args], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=60)

    listed = mgn("verify", "list", PKG, "--json")
    assert listed.returncode == 0, listed.stderr
    catalogue = {c["id"]: c for c in json.loads(listed.stdout)}
    assert sorted(catalogue) == ["acme_disk.scratch.free", "acme_disk.scratch.roundtrip[1024]",
                                 "acme_disk.scratch.roundtrip[1]", "system.python.version"]
    assert catalogue["acme_disk.scratch.free"]["requires"] == ["system.python.version"]
    assert catalogue["acme_disk.scratch.free"]["plugin"] == NAME
    assert catalogue["acme_disk.scratch.free"]["settings"] == ["acme_disk.min_free_mb"]
    assert catalogue["acme_disk.scratch.roundtrip[1]"]["severity"] == "warning"

    report = tmp_path / "report.json"
    ran = mgn("verify", PKG, "--json", str(report))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(report.read_text())["results"]}
    assert statuses == dict.fromkeys(catalogue, "pass")  # the required built-in pulled in and passed

    version = mgn("verify", "--version")
    row = next(line.split() for line in version.stdout.splitlines() if line.strip().startswith(NAME))
    assert row == [NAME, "entry", "point", NAME, "0.1.0", "mgn_add_settings"]

    # Editable: an edit to the checks shows at once, without reinstalling.
    checks = root / PKG / "checks.py"
    source = checks.read_text()
    checks.write_text(source.replace("Enough free space in the temp dir", "Edited in place"))
    try:
        edited = mgn("verify", "list", PKG, "--json")
    finally:
        checks.write_text(source)
    assert {c["id"]: c["title"] for c in json.loads(edited.stdout)}["acme_disk.scratch.free"] == "Edited in place"

    # Its own tests, written with the kit: they prove the built-in passes before the check starts,
    # and that a failing assert shows its values (the package opts its checks into rewriting).
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root,
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout

    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=root,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.slow  # a cold mypy --strict
def test_generated_code_is_mypy_strict_clean(generated: tuple[Path, Path, str], tmp_path: Path) -> None:
    root, _, _ = generated
    # MYPYPATH: mgn-verify may be an editable install, whose import hook mypy cannot follow; its
    # own modules are then sources too, checked elsewhere (silent: only the generated files count).
    command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path)]
    checked = subprocess.run(command, cwd=root, env={**os.environ, "MYPYPATH": str(REPO)}, capture_output=True,
                             text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues found in 3 source files" in checked.stdout
