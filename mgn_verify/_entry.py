"""The ``mgn`` console script. Ctrl-C and SIGTERM are handled from its first instant: before
the command line is even parsed they end ``mgn`` with one line and exit 130, never a traceback
or death by signal (later, each phase of a command handles them itself and still writes its
reports)."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import NoReturn

__all__ = ["main"]

_INTERRUPTED = 130  # ExitCode.INTERRUPTED, without importing the CLI before the handlers are set


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> NoReturn:
    signal.signal(signal.SIGTERM, _interrupt)  # SIGINT raises KeyboardInterrupt already
    try:
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("mgn: interrupted\n")
        raise SystemExit(_INTERRUPTED) from None
    raise SystemExit(0)  # cli_main always raises SystemExit; this is never reached
