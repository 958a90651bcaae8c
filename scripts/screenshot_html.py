#!/usr/bin/env python3
"""Regenerate the README's screenshot of the HTML report (docs/images/html-report.png).

    python3 scripts/screenshot_html.py [--out docs/images/html-report.png] [--height 1150]

It runs ``mgn verify all --lab --fault kubernetes.down --html REPORT`` (the built-in lab with
the Kubernetes API down), opens the report in headless Chromium (Debian's ``chromium``) and
saves a screenshot of the top of the page. tests/test_html_report.py drives the same two
functions (``lab_report``, ``capture``) and asserts on what Chromium rendered.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "docs" / "images" / "html-report.png"
# Chromium logs every console message (errors, CSP violations, uncaught exceptions) like this.
_CONSOLE = re.compile(r":CONSOLE(?::\d+|\(\d+\))\]")


@dataclass(frozen=True)
class Capture:
    dom: str              # the DOM after loading (--dump-dom)
    console: list[str]    # console messages Chromium logged (none expected)
    png: Path


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("screenshot_html: no chromium on PATH (Debian: apt-get install chromium)")


def lab_report(html: Path, extra: Sequence[str] = (), env: Mapping[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``mgn verify all --lab --fault kubernetes.down --html HTML [EXTRA...]`` (exit 1: checks fail)."""
    argv = [sys.executable, "-m", "mgn_verify", "verify", "all", "--lab", "--fault", "kubernetes.down",
            "--no-history", "--html", str(html), *extra]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=html.parent)
    if proc.returncode != 1 or not html.is_file():
        raise RuntimeError(f"mgn exited {proc.returncode} (expected 1: the fault fails checks)\n{proc.stderr}")
    return proc


def capture(html: Path, png: Path, *, width: int = 1280, height: int = 1150, timeout: float = 120) -> Capture:
    """One headless Chromium run: screenshot ``png`` and the rendered DOM, with its console log."""
    with tempfile.TemporaryDirectory(prefix="mgn-chromium-") as profile:
        argv = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                f"--window-size={width},{height}", f"--screenshot={png}", "--dump-dom", html.resolve().as_uri()]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=profile)
    if proc.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium exited {proc.returncode}\n{proc.stderr[-2000:]}")
    console = [line for line in proc.stderr.splitlines() if _CONSOLE.search(line)]
    return Capture(proc.stdout, console, png)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the PNG goes")
    parser.add_argument("--height", type=int, default=1150, help="window height (the top of the page)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mgn-report-") as tmp:
        html = Path(tmp) / "report.html"
        lab_report(html)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shot = capture(html, args.out, height=args.height)
    if shot.console:
        print("\n".join(shot.console), file=sys.stderr)
        return 1
    print(f"{args.out}: {args.out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
