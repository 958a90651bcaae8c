"""The console on a real terminal: live progress while checks run, colour, then the report."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ISOLATED


def _run_on_a_terminal(argv: list[str], env: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True)
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the terminal closed, the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(timeout=10), b"".join(chunks).decode("utf-8", "replace")


def test_live_progress_then_coloured_report(checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_t='''
import time
from mgn_verify import check
@check(id="t.slow")
def check_slow(): time.sleep(1.5)
@check(id="t.bad")
def check_bad(): assert False, "broken"
''')
    env = {**os.environ, "MGN_CONFIG": os.devnull, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    code, screen = _run_on_a_terminal([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir",
                                       str(directory), *ISOLATED], env)
    assert code == 1
    assert re.search(r"\[1/2\] running: t\.slow \(\d\.\d s\)", screen), screen
    assert "\x1b[1;31m✗\x1b[0m t.bad" in screen          # colour on a terminal
    assert "\x1b[1mExit 1:\x1b[0m at least one check failed" in screen
    plain = {**env, "NO_COLOR": "1"}
    code, screen = _run_on_a_terminal([sys.executable, "-m", "mgn_verify", "verify", "--checks-dir",
                                       str(directory), *ISOLATED], plain)
    assert code == 1 and "✗ t.bad" in screen and "\x1b[1;31m" not in screen
