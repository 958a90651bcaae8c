"""The ``junit`` reporter: JUnit XML through the junit-xml package, valid against junit-10.xsd.

One ``testsuite`` per layer, one ``testcase`` per check (name = id, classname = layer).
``fail`` → ``failure``, ``error`` → ``error``, ``skip``/``blocked``/``waived`` → ``skipped``
with the reason. The schema allows no per-testcase properties, so a ``warn`` (and every
check's status, severity, remediation and captured output) is written to the testcase's
``system-out``. Framework errors (a load that failed, a hook that raised, an unwritable report)
are a last testsuite ``mgn``, one ``error`` testcase each, so CI shows them too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .._model import Result, Status, layer_sort_key
from .._report import RunReport
from .._reporting import ReporterContext, ReporterRegistry
from ..hookspecs import hookimpl

__all__ = ["JunitReporter"]

# Characters XML 1.0 cannot carry at all (even escaped): C0 controls but tab/LF/CR, surrogates,
# U+FFFE/U+FFFF. They are replaced so a check's odd message cannot make the file unreadable.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("\ufffd", text)


class JunitReporter:
    def __init__(self, context: ReporterContext) -> None:
        self._context = context

    def render(self, report: RunReport) -> str:
        from junit_xml import TestCase, TestSuite  # lazy: only runs that ask for JUnit pay for it

        layers: dict[str, list[Result]] = {}
        for result in report.results:
            layers.setdefault(result.layer, []).append(result)
        root = ET.Element("testsuites", {"name": "mgn verify"})
        totals = {"tests": 0, "failures": 0, "errors": 0}
        suites = [(layer, [self._case(TestCase, result) for result in layers[layer]])
                  for layer in sorted(layers, key=layer_sort_key)]
        if report.errors:
            suites.append(("mgn", [self._error_case(TestCase, n, error) for n, error in enumerate(report.errors, 1)]))
        for layer, cases in suites:
            suite = TestSuite(layer, cases, hostname=report.hostname, id=layer, package="mgn_verify",
                              timestamp=report.started_at.isoformat(timespec="seconds"),
                              properties={"run_id": report.run_id, "tool_version": report.tool_version})
            element = suite.build_xml_doc()
            element.attrib.pop("disabled", None)  # junit-xml 1.9 writes it; the schema rejects it
            root.append(element)
            for key in totals:
                totals[key] += int(element.get(key, "0"))
        root.set("time", f"{report.duration_s:.3f}")
        for key, value in totals.items():
            root.set(key, str(value))
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    @staticmethod
    def _case(test_case: type, result: Result) -> object:
        lines = [f"status: {result.status}", f"severity: {result.severity}"]
        if result.message:
            lines.append(f"message: {result.message}")
        if result.remediation:
            lines.append(f"remediation: {result.remediation}")
        if result.blocked_by:
            lines.append("blocked_by: " + ", ".join(result.blocked_by))
        if result.output:
            lines.append("output:\n" + result.output.rstrip("\n"))
        case = test_case(result.id, classname=result.layer, elapsed_sec=result.duration_s,
                         stdout=_clean("\n".join(lines)))
        message = _clean(result.message or str(result.status))
        if result.status is Status.FAIL:
            case.add_failure_info(message=message, output=_clean(result.remediation) or None, failure_type="fail")
        elif result.status is Status.ERROR:
            case.add_error_info(message=message, error_type="error")
        elif result.status in (Status.SKIP, Status.BLOCKED, Status.WAIVED):
            case.add_skipped_info(message=_clean(f"{result.status}: {result.message}"))
        return case

    @staticmethod
    def _error_case(test_case: type, number: int, error: str) -> object:
        case = test_case(f"mgn.error[{number}]", classname="mgn", elapsed_sec=0.0, stdout=_clean(error))
        case.add_error_info(message=_clean(error), error_type="framework error")
        return case


@hookimpl
def mgn_register_reporters(reporters: ReporterRegistry) -> None:
    reporters.add("junit", JunitReporter, help="JUnit XML (a testsuite per layer), for CI")
