"""Packaging: a plain ``pip install`` of the wheel gives a working ``mgn`` with every built-in check,
every package (the lab's subpackages too) and the report JSON Schema, and no generic top-level
names (``checks``, ``plugins``) land in site-packages. Start-up stays lazy.

The wheel is built once from a clean copy of the sources (a stale ``build/`` in the checkout must
not leak into it) with this environment's setuptools and wheel (``pip install -e '.[test]'``
provides them), then installed with ``--no-deps`` into a fresh venv that sees this environment's
dependencies through a ``.pth`` file: the same whether the suite runs in a virtualenv or on a
bare machine, and no network."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.helpers import REPO, REPORT_SCHEMA

# pytest's internals too: only a failing rewritten assert imports them (mgn_verify/_assert_support.py).
HEAVY = ("kubernetes", "rethinkdb", "_pytest")
# Only the GuildNet layers talk HTTP to the Host App (discovery) and Headscale.
HEAVY_WITH_HTTPX = (*HEAVY, "httpx")
# What a wheel is built from (pyproject's package-dir: mgn_verify, checks, reports/schema).
SOURCES = ("mgn_verify", "checks", "reports", "pyproject.toml", "README.md")
_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", "out")


def run_ok(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on failure the assertion shows the command with its whole stdout and stderr."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, (
        f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    return proc  # type: ignore[no-any-return]


def _dependency_dirs() -> list[str]:
    """Where this interpreter finds the dependencies (a venv's site-packages, or the system's)."""
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    dirs |= {entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))}
    return sorted(d for d in dirs if Path(d).is_dir())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=_JUNK)
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    run_ok([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
            "--disable-pip-version-check", "-w", str(out), str(src)], cwd=out)
    (built,) = out.glob("mgn_verify-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed (no deps: they come from this environment)."""
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site = Path(run_ok([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # Plain path lines: the dirs join sys.path after the venv's own site-packages, and their .pth
    # files (an editable install of this checkout) are not run, so mgn_verify is the wheel's.
    (site / "_outer_deps.pth").write_text("".join(f"{d}\n" for d in _dependency_dirs()))
    run_ok([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
            "--disable-pip-version-check", str(wheel)], cwd=root)
    return root


def _site(venv_root: Path) -> Path:
    return next((venv_root / "lib").glob("python3*/site-packages"))


def _source_packages() -> list[str]:
    """Every package of the checkout, as installed: mgn_verify.*, checks/ as mgn_verify.checks."""
    found = ["mgn_verify.checks", "mgn_verify.schema"]
    for init in sorted((REPO / "mgn_verify").rglob("__init__.py")):
        if "__pycache__" not in init.parts:
            found.append(".".join(init.parent.relative_to(REPO).parts))
    return found


def test_run_ok_shows_the_failing_command_output() -> None:
    with pytest.raises(AssertionError) as err:
        run_ok([sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                "/nonexistent/mgn-verify-package"])
    assert "--- stderr ---" in str(err.value) and "/nonexistent/mgn-verify-package" in str(err.value)
    assert "ERROR" in str(err.value)  # pip's own error line, not only an exit code


def test_wheel_installs_a_working_mgn_with_builtins_under_the_package(fresh_venv: Path) -> None:
    site = _site(fresh_venv)
    assert not (site / "checks").exists() and not (site / "plugins").exists()
    assert (site / "mgn_verify" / "checks" / "system.py").exists()
    mgn = fresh_venv / "bin" / "mgn"
    proc = subprocess.run([str(mgn), "verify", "list", "--json"], capture_output=True, text=True,
                          cwd=fresh_venv, env={"HOME": str(fresh_venv), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "system.os.supported" in proc.stdout and str(REPO) not in proc.stdout


def test_wheel_has_every_package(fresh_venv: Path) -> None:
    site = _site(fresh_venv)
    missing = [name for name in _source_packages() if not (site / Path(*name.split("."))).is_dir()]
    assert missing == [], f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    for sub in ("kube", "rethinkdb", "hostapp"):
        assert (site / "mgn_verify" / "lab" / sub / "__init__.py").is_file()


def test_installed_wheel_ships_the_report_schema(fresh_venv: Path) -> None:
    probe = ("import importlib.resources, mgn_verify\n"
             "ref = importlib.resources.files('mgn_verify.schema') / 'report-v1.json'\n"
             "print(mgn_verify.__file__)\nprint(ref.read_text())")
    proc = run_ok([str(fresh_venv / "bin" / "python"), "-c", probe], cwd=fresh_venv)
    package_file, text = proc.stdout.split("\n", 1)
    assert Path(package_file).is_relative_to(_site(fresh_venv))  # the wheel's, not the checkout's
    assert json.loads(text) == json.loads(REPORT_SCHEMA.read_text())


def test_installed_lab_and_its_pytest_plugin_load(fresh_venv: Path) -> None:
    probe = ("from importlib.metadata import entry_points\n"
             "(ep,) = [e for e in entry_points(group='pytest11') if e.name == 'mgn_verify'][:1]\n"
             "plugin = ep.load()\n"
             "from mgn_verify.lab import Lab\n"
             "from mgn_verify.lab.kube import KubeSimulator\n"
             "from mgn_verify.lab.rethinkdb import RethinkDBSimulator\n"
             "from mgn_verify.lab.hostapp import HostAppSimulator\n"
             "import mgn_verify.lab.kube.store, mgn_verify.lab.rethinkdb.wire, mgn_verify.lab.hostapp.cluster\n"
             "print(plugin.__file__)")
    proc = run_ok([str(fresh_venv / "bin" / "python"), "-c", probe], cwd=fresh_venv)
    assert Path(proc.stdout.strip()).is_relative_to(_site(fresh_venv))
    lab_help = run_ok([str(fresh_venv / "bin" / "mgn"), "lab", "--help"], cwd=fresh_venv,
                      env={"HOME": str(fresh_venv), "PATH": "/usr/bin:/bin"})
    assert "up" in lab_help.stdout


@pytest.mark.parametrize(("argv", "heavy"), [(["--version"], HEAVY_WITH_HTTPX), (["verify", "list"], HEAVY),
                                             (["verify", "system"], HEAVY_WITH_HTTPX)])
def test_heavy_libraries_are_not_imported(argv: list[str], heavy: tuple[str, ...], tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom mgn_verify.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(heavy)!r})))\n"
        "print('LAB=' + str('mgn_verify.lab' in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={"HOME": str(tmp_path), "MGN_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"})
    assert proc.stdout.strip().splitlines()[-2:] == ["HEAVY=", "LAB=False"], proc.stdout + proc.stderr
