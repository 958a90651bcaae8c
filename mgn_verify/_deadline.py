"""The run deadline derived from the checks' own limits, when ``verify.run_deadline`` is 0.

It is an upper bound of a healthy run, so it only fires when something is badly wrong: the
longer of the critical path of worst-case attempt durations (timeout x (retries + 1) plus the
backoffs between retries) and the total worst-case work spread over the concurrency, plus one
timeout per teardown, the ``--wait`` duration (and one more attempt), and a margin for scheduling and slow machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._model import CheckSpec
from ._report import RunOptions

__all__ = ["derived_run_deadline"]

_MARGIN_S = 5.0
_MARGIN_FACTOR = 1.1


def derived_run_deadline(specs: Iterable[CheckSpec], requires: Mapping[str, Iterable[str]],
                         options: RunOptions, teardowns: int) -> float:
    """``specs`` in dependency order (as the plan lists them); ``requires`` by check id."""
    longest: dict[str, float] = {}   # worst-case finish time of each check, from the run's start
    total = attempt = 0.0
    for spec in specs:
        worst = _worst_case(spec, options.default_timeout)
        total += worst
        attempt = max(attempt, spec.timeout or options.default_timeout)
        longest[spec.id] = worst + max((longest[d] for d in requires.get(spec.id, ()) if d in longest),
                                       default=0.0)
    checks = max(max(longest.values(), default=0.0), total / max(1, options.concurrency))
    wait = options.wait + attempt if options.wait else 0.0  # --wait, then one last attempt
    bound = checks + teardowns * options.default_timeout + wait
    return bound * _MARGIN_FACTOR + _MARGIN_S


def _worst_case(spec: CheckSpec, default_timeout: float) -> float:
    timeout = spec.timeout or default_timeout
    backoffs = sum(spec.retry_delay * 2.0 ** attempt for attempt in range(spec.retries))
    return timeout * (spec.retries + 1) + backoffs
