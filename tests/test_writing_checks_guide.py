"""docs/writing-checks.md is executed, top to bottom, as a new user would follow it.

Every fenced block is either a file (``<!-- file: PATH -->`` on the line before it: written to
PATH) or a ``console`` block whose ``$ `` lines run, in order, in one working directory with
``mgn``, ``pip`` and ``pytest`` of a fresh virtualenv on PATH (it sees this interpreter's
packages, mgn-verify among them). A command must exit 0 unless it ends with ``# exit N``; the
lines shown under it must appear in its output, in order (durations are not compared; ``...``
marks lines left out). ``pip install`` runs without network or build isolation: the command line
stays the guide's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import REPO

GUIDE = REPO / "docs" / "writing-checks.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
_FILE = re.compile(r"<!-- file: (\S+) -->\s*$")
_DURATION = re.compile(r"\b\d+(\.\d+)?\s?(µs|ms|s)\b")


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        found = re.search(r"#\s*exit (\d+)\s*$", self.line)
        return int(found.group(1)) if found else 0


@dataclass
class Step:
    path: str | None = None          # a file to write
    text: str = ""
    commands: list[Command] = field(default_factory=list)


def guide_steps() -> list[Step]:
    text = GUIDE.read_text()
    steps: list[Step] = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        lang, body = match.group(1), match.group(2)
        marker = _FILE.search(before)
        if marker:
            steps.append(Step(path=marker.group(1), text=body))
        elif lang == "console":
            steps.append(Step(commands=_commands(body)))
        else:
            raise AssertionError(f"a {lang or 'plain'} block that no test runs: {body[:60]!r}")
    return steps


def _commands(body: str) -> list[Command]:
    commands: list[Command] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif line.strip() and line.strip() != "...":
            commands[-1].expected.append(line)
    return commands


def _normal(line: str) -> str:
    return " ".join(_DURATION.sub("T", line).split())


def _missing(expected: list[str], output: str) -> str | None:
    """The first expected line not found (as part of a line) after the previous one."""
    lines = [_normal(line) for line in output.splitlines()]
    at = 0
    for want in map(_normal, expected):
        while at < len(lines) and want not in lines[at]:
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


def _shims(directory: Path) -> None:
    """A virtualenv (no pip of its own: this interpreter's is used) and, in ``directory``, its
    ``mgn``, ``pytest`` and ``pip``. ``-P``: like installed console scripts, the working directory
    is not on sys.path (a project directory named like its package would shadow it)."""
    venv = directory.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    directory.mkdir()
    for name, module in (("mgn", "-P -m mgn_verify"), ("pytest", "-P -m pytest"), ("pip", "-m pip")):
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nexec "{venv / "bin" / "python"}" {module} "$@"\n')
        shim.chmod(0o755)


def _environment(tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MGN_", "PYTEST_", "PIP_")) and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp / "home"), PATH=f"{tmp / 'bin'}:{env['PATH']}", PIP_NO_DEPS="1",
               PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", NO_COLOR="1")
    return env


def test_every_block_of_the_guide_is_run_by_this_test() -> None:
    steps = guide_steps()
    assert sum(1 for s in steps if s.path) >= 7 and sum(len(s.commands) for s in steps) >= 12
    readme = (REPO / "README.md").read_text()
    assert "(docs/writing-checks.md)" in readme


@pytest.mark.slow  # ~20 real mgn/pip/pytest processes
def test_the_guide_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "home").mkdir()
    _shims(tmp_path / "bin")
    env = _environment(tmp_path)
    for step in guide_steps():
        if step.path:
            target = work / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.text)
            continue
        for command in step.commands:
            proc = subprocess.run(["bash", "-c", command.line], cwd=work, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
            shown = f"$ {command.line}\n{proc.stdout}"
            assert proc.returncode == command.exit_code, shown
            missing = _missing(command.expected, proc.stdout)
            assert missing is None, f"{missing!r} not in the output of\n{shown}"
