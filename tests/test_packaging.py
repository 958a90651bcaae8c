"""Packaging: a plain ``pip install .`` gives a working ``mgn`` with every built-in check, and no
generic top-level names (``checks``, ``plugins``) land in site-packages. Start-up stays lazy."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

HEAVY = ("kubernetes", "rethinkdb")
# Only the GuildNet layers talk HTTP to the Host App (discovery) and Headscale.
HEAVY_WITH_HTTPX = (*HEAVY, "httpx")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv (seeing the already installed dependencies) with a non-editable install."""
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root)
    python = root / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", str(REPO)], check=True, capture_output=True, cwd=root)
    return root


def test_wheel_installs_a_working_mgn_with_builtins_under_the_package(fresh_venv: Path) -> None:
    site = next((fresh_venv / "lib").glob("python3*/site-packages"))
    assert not (site / "checks").exists() and not (site / "plugins").exists()
    assert (site / "mgn_verify" / "checks" / "system.py").exists()
    mgn = fresh_venv / "bin" / "mgn"
    proc = subprocess.run([str(mgn), "verify", "list", "--json"], capture_output=True, text=True,
                          cwd=fresh_venv, env={"HOME": str(fresh_venv), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "system.os.supported" in proc.stdout and str(REPO) not in proc.stdout


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
