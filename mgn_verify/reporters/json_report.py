"""The ``json`` reporter: the versioned document described by reports/schema/report-v1.json."""

from __future__ import annotations

import json

from .._report import RunReport
from ..hookspecs import hookimpl
from . import ReporterContext, ReporterRegistry

__all__ = ["JsonReporter"]


class JsonReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context

    def render(self, report: RunReport) -> str:
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("json", JsonReporter, help="machine-readable report (schema in reports/schema/)")

