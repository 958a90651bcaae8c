"""Review of the gates, the preflight and the audit log (issue 10): what an unlucky user types
(a reason with control characters or undecodable bytes, a huge or missing reason, an audit path
that is a directory) never crashes, never breaks the one-line audit format or the console, and
``mgn verify --gate G --cluster C`` runs exactly the checks the gated command runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mgn_verify.lab import Lab
from mgn_verify.lifecycle.context import CommandContext
from mgn_verify.lifecycle.preflight import MAX_REASON, Preflight, PreflightOutcome, run_preflight
from tests.helpers import Run, statuses

#: Terminal escapes, Unicode line breaks, a C1 CSI and an undecodable byte (surrogateescape).
NASTY = "OPS-1\x1b[31m red\u2028second\x85third\x9b31m\r\nfourth\udcff"
RAW_BREAKERS = ("\x1b", "\u2028", "\x85", "\x9b", "\r")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture
def broken(lab: Lab) -> Iterator[None]:
    """A failing (waivable) member of workspace.create for one test."""
    lab.inject("hostapp.no_kubeconfig")
    yield
    lab.clear("hostapp.no_kubeconfig")


def preflight(lab: Lab, tmp_path: Path, *, argv: tuple[str, ...] = (), audit: Path | None = None,
              **fields: Any) -> PreflightOutcome:
    settings = {"audit.path": (str(audit or tmp_path / "audit.jsonl"), False)}
    ctx = CommandContext(str(lab.config_path), settings, argv=["mgn", "workspace", "create", "lab", *argv])
    request = {"gate": "workspace.create", "clusters": ("lab",), "command": "workspace create",
               "json_path": str(tmp_path / "preflight.json"), **fields}
    return run_preflight(Preflight(**request), ctx)


def test_a_reason_with_control_characters_keeps_the_audit_log_one_line_per_override(
        lab: Lab, tmp_path: Path, broken: None, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(lab, tmp_path, ignore=("all",), reason=NASTY, argv=("--name", "w\u2028x\udcfe"))
    assert outcome.proceed, capsys.readouterr().err
    raw = (tmp_path / "audit.jsonl").read_bytes()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")
    text = raw.decode("utf-8")  # strict: no lone surrogate reached the file
    assert len(text.splitlines()) == 1 and not any(c in text for c in RAW_BREAKERS)
    line = json.loads(text)
    assert line["argv"][-2:] == ["--name", "w\u2028x\udcfe"]  # the command line as typed, escaped
    reason = line["reason"]
    assert reason.startswith("OPS-1") and "second third" in reason and reason.endswith("fourth\\udcff")
    assert not any(c in reason for c in RAW_BREAKERS)
    err = capsys.readouterr().err
    assert not any(c in err for c in RAW_BREAKERS), err
    assert json.loads((tmp_path / "preflight.json").read_text())["gate"]["reason"] == reason


def test_a_huge_reason_is_refused_before_anything_runs(lab: Lab, tmp_path: Path, broken: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = len(lab.hostapp_requests)
    outcome = preflight(lab, tmp_path, ignore=("all",), reason="x" * 100_000)
    assert (outcome.proceed, outcome.exit_code) == (False, 2)
    err = capsys.readouterr().err
    assert err.strip() == (f"mgn: error: --reason is 100000 characters long: at most {MAX_REASON} "
                           "(name a ticket or a link instead)")
    assert len(lab.hostapp_requests) == before and not (tmp_path / "audit.jsonl").exists()
    assert json.loads((tmp_path / "preflight.json").read_text())["gate"]["decision"] == "refuse"


def test_a_missing_reason_is_no_traceback(lab: Lab, tmp_path: Path, broken: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    outcome = preflight(lab, tmp_path, ignore=("all",), reason=None)
    assert outcome.proceed
    assert "without --reason" in capsys.readouterr().err
    assert json.loads((tmp_path / "audit.jsonl").read_text())["reason"] == ""


def test_an_audit_path_that_is_a_directory_refuses_in_one_escaped_line(
        lab: Lab, tmp_path: Path, broken: None, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "audit\x1b[31m"
    directory.mkdir()
    outcome = preflight(lab, tmp_path, ignore=("all",), reason="r", audit=directory)
    assert (outcome.proceed, outcome.exit_code) == (False, 2)
    verdict = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Is a directory" in verdict and "audit\\x1b[31m" in verdict and "\x1b" not in verdict


@pytest.mark.parametrize("gate", ["workspace.create", "cluster.delete"])
def test_verify_gate_runs_exactly_what_the_command_runs(lab: Lab, tmp_path: Path, mgn: Callable[..., Run],
                                                        gate: str) -> None:
    verified = mgn("verify", "--gate", gate, "--cluster", "lab", "--config", str(lab.config_path))
    assert verified.exit_code == 0, verified.stderr
    outcome = preflight(lab, tmp_path, gate=gate)
    assert outcome.proceed
    gated = statuses(json.loads((tmp_path / "preflight.json").read_text()))
    assert set(verified.statuses) == set(gated) and gated


def test_waivable_must_be_a_bool_and_a_gate_name_must_not_be_blank() -> None:
    from mgn_verify import check

    with pytest.raises(TypeError, match="waivable must be True or False"):
        check(id="x.y", waivable="no")  # type: ignore[call-overload]  # truthy: it would have been waivable
    with pytest.raises(ValueError, match="gate names must not be blank"):
        check(id="x.y", gates=["install", " "])


def test_a_refusal_by_checks_that_cannot_be_waived_does_not_suggest_an_override(
        lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab.inject("kubernetes.down")
    try:
        outcome = preflight(lab, tmp_path, ignore=("all",), reason="I insist")
    finally:
        lab.clear("kubernetes.down")
    assert (outcome.proceed, outcome.exit_code) == (False, 1)
    verdict = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--ignore-preflight-errors" not in verdict
    assert verdict.endswith("nothing was changed (kubernetes.api.reachable[lab] cannot be overridden: fix it first)")
