"""The ``json`` reporter: the versioned document described by reports/schema/report-v1.json.

Always strict RFC 8259 JSON: ``details`` are made JSON-safe where they enter a result
(``to_safe_json``: NaN and infinities become the strings "NaN", "Infinity", "-Infinity");
should a hook have put anything else there since, it is sanitized again here.
"""

from __future__ import annotations

import json
from typing import Any

from .._report import RunReport
from .._reporting import ReporterContext, ReporterRegistry
from .._safejson import to_safe_json
from ..hookspecs import hookimpl

__all__ = ["JsonReporter"]


class JsonReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context

    def render(self, report: RunReport) -> str:
        data = report.to_dict()
        try:
            return _dumps(data)
        except (TypeError, ValueError, RecursionError):  # details a hook changed after the Result boundary
            for result in data["results"]:
                result["details"] = to_safe_json(result["details"], self._context.config.redactor)
            return _dumps(data)


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("json", JsonReporter, help="machine-readable report (schema in reports/schema/)")
