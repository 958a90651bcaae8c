"""What a run was asked to do (``RunPlan``) and what it concluded (``RunReport``)."""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._exitcodes import ExitCode
from ._model import CheckSpec, Result, Status
from ._version import __version__

if TYPE_CHECKING:
    from .config import Redactor

__all__ = ["SCHEMA_VERSION", "RunOptions", "RunPlan", "RunReport"]

#: Bumped on any incompatible change to the JSON report (see reports/schema/).
SCHEMA_VERSION = "1.2"  # 1.1: results carry `output` (what a check printed); 1.2: optional `gate`


@dataclass(frozen=True, slots=True)
class RunOptions:
    concurrency: int = 16
    default_timeout: float = 10.0
    fail_fast: bool = False
    wait: float | None = None
    strict: bool = False
    #: Seconds the whole run may take (``verify.run_deadline``); 0: derived from the timeouts.
    run_deadline: float = 0.0
    #: ``--isolate``: sync checks run in child processes, killed at their timeout.
    isolate: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, fail_fast: bool = False,
                    wait: float | None = None) -> RunOptions:
        """The options the ``verify.*`` settings give, plus the run's own flags."""
        return cls(concurrency=config["verify.concurrency"], default_timeout=config["verify.timeout"],
                   fail_fast=fail_fast, wait=wait, strict=config["verify.strict"],
                   run_deadline=config["verify.run_deadline"], isolate=config["verify.isolate"])


@dataclass(slots=True)
class RunPlan:
    """The selected checks in report order (dependency order, then layer and id)."""

    specs: list[CheckSpec]
    options: RunOptions
    selection: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.specs)


@dataclass(slots=True)
class RunReport:
    """A finished run: metadata, ordered results and the exit code."""

    results: list[Result]
    started_at: datetime
    duration_s: float
    hostname: str
    argv: list[str]
    tool_version: str
    exit_code: ExitCode
    interrupted: bool = False
    selection: list[str] = field(default_factory=list)
    plugins: list[dict[str, str]] = field(default_factory=list)
    config_file: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: A lifecycle command's preflight: ``{name, command, clusters, decision, overrides, reason,
    #: audit_path}`` (``None`` for ``mgn verify``; then the JSON report has no ``gate``).
    gate: dict[str, Any] | None = None

    @classmethod
    def for_failure(cls, error: str, *, argv: list[str], exit_code: ExitCode, interrupted: bool = False,
                    warnings: list[str] | None = None, selection: list[str] | None = None,
                    config_file: str | None = None) -> RunReport:
        """The report of a run that could not start (loading failed or was interrupted): no
        results, the reason in ``errors``. ``argv`` must already be scrubbed."""
        return cls(results=[], started_at=datetime.now(UTC), duration_s=0.0, hostname=socket.gethostname(),
                   argv=argv, tool_version=__version__, exit_code=exit_code, interrupted=interrupted,
                   errors=[error], warnings=list(warnings or []), selection=list(selection or []),
                   config_file=config_file)

    def mark_interrupted(self, why: str) -> None:
        """Ctrl-C or SIGTERM came after the checks had run (their results stay as they are):
        exit 130, and ``why`` in ``errors``."""
        if not self.interrupted:
            self.interrupted = True
            self.errors.append(why)
        self.exit_code = ExitCode.INTERRUPTED

    def redact(self, redactor: Redactor) -> None:
        """Mask secrets in every text of the report, ids and error messages included (in place;
        applying it twice changes nothing). Run before any reporter renders the report."""
        def text(value: str) -> str:
            value = redactor.text(value)
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate (an undecodable file name) cannot be written
                value = value.encode("utf-8", "backslashreplace").decode("utf-8")
            return value

        for result in self.results:
            result.id, result.title, result.message = text(result.id), text(result.title), text(result.message)
            result.remediation, result.output = text(result.remediation), text(result.output)
            result.target = text(result.target) if result.target is not None else None
            result.requires = tuple(map(text, result.requires))
            result.blocked_by = tuple(map(text, result.blocked_by))
            result.details = redactor.data(result.details)
            if result.waiver is not None:  # its reason is free text (--reason): it may quote a secret
                waiver = result.waiver
                result.waiver = replace(waiver, pattern=text(waiver.pattern), reason=text(waiver.reason),
                                        source=text(waiver.source))
        self.argv = [text(arg) for arg in self.argv]
        if self.gate is not None:
            self.gate = redactor.data(self.gate)
        self.errors[:] = [text(error) for error in self.errors]
        self.warnings[:] = [text(warning) for warning in self.warnings]

    def counts(self) -> dict[str, int]:
        tally = Counter(r.status for r in self.results)
        return {str(status): tally.get(status, 0) for status in Status}

    def root_causes(self) -> list[tuple[Result, list[str]]]:
        """Every ``fail``/``error`` (no failure is a consequence of another: those are ``blocked``),
        and anything else that blocked others, with the ids it blocked; most blocking first."""
        # Checks cut off by Ctrl-C found nothing: they are not causes of anything.
        blocked: dict[str, list[str]] = {r.id: [] for r in self.results if r.status in (Status.FAIL, Status.ERROR)
                                         and not r.message.startswith("interrupted")}
        for result in self.results:
            for root in result.blocked_by:
                blocked.setdefault(root, []).append(result.id)
        by_id = {r.id: r for r in self.results}
        causes = [(by_id[root], ids) for root, ids in blocked.items() if root in by_id]
        return sorted(causes, key=lambda item: (-len(item[1]), item[0].id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "mgn-verify", "version": self.tool_version},
            "run": {
                "id": self.run_id, "started_at": self.started_at.isoformat(),
                "duration_s": round(self.duration_s, 6), "hostname": self.hostname,
                "argv": self.argv, "selection": self.selection, "config_file": self.config_file,
                "interrupted": self.interrupted, "plugins": self.plugins,
                "warnings": self.warnings,
            },
            "summary": {
                "total": len(self.results), "counts": self.counts(),
                "exit_code": int(self.exit_code), "exit_meaning": self.exit_code.meaning,
                "root_causes": [{"id": r.id, "status": str(r.status), "blocks": ids}
                                for r, ids in self.root_causes()],
                "errors": self.errors,
            },
            "results": [r.to_dict() for r in self.results],
            **({"gate": self.gate} if self.gate is not None else {}),
        }
