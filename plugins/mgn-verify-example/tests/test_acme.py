"""The acme checks, tested with mgn-verify's test kit (the ``mgn_kit`` and ``mgn_hooks`` fixtures
come with mgn-verify's pytest plugin). Run ``pytest`` here after ``pip install .``: the checks
are found through this distribution's entry point, exactly as ``mgn verify`` finds them."""

from __future__ import annotations

import pytest

from mgn_verify.testing import HookRecorder, MgnKit

EXPECTED = {
    "system.os.supported": "pass",        # required by acme.scratch.writable: pulled in, run first
    "acme.api_key.set": "skip",
    "acme.names.valid[alpha]": "pass",
    "acme.names.valid[beta]": "pass",
    "acme.scratch.writable": "pass",
}


@pytest.mark.parametrize("process", [False, True], ids=["in-process", "process"])
def test_acme_layer_runs_with_its_dependency(mgn_kit: MgnKit, process: bool) -> None:
    run = mgn_kit.verify("acme", process=process)
    assert run.exit_code == 0, run.stderr
    assert run.statuses() == EXPECTED
    assert run.messages()["acme.api_key.set"] == "acme.api_key is not set"
    assert run.report is not None
    assert {p["name"]: p["distribution"] for p in run.report["run"]["plugins"]}["acme"] == "mgn-verify-example"


def test_settings_come_from_the_config(mgn_kit: MgnKit) -> None:
    scratch = mgn_kit.path / "scratch"
    scratch.mkdir()
    mgn_kit.write_config({"acme": {"scratch_dir": str(scratch), "api_key": "s3cret-key"}})
    run = mgn_kit.verify("acme")
    assert run.exit_code == 0, run.stderr
    assert run.statuses()["acme.api_key.set"] == "pass"
    assert run.messages()["acme.scratch.writable"].startswith(f"wrote {scratch}/acme-")
    assert list(scratch.iterdir()) == []      # the fixture's teardown removed its file
    assert "s3cret-key" not in run.stdout + run.stderr + str(run.report)  # a secret never reaches output


def test_a_missing_scratch_dir_is_an_error_with_the_remediation(mgn_kit: MgnKit) -> None:
    mgn_kit.write_config({"acme": {"scratch_dir": str(mgn_kit.path / "missing")}})
    run = mgn_kit.verify("acme", "--check", "acme.scratch.*")
    assert run.exit_code == 3                       # a check errored
    assert run.statuses() == {"system.os.supported": "pass", "acme.scratch.writable": "error"}
    result = run.result("acme.scratch.writable")
    assert result["message"].startswith("fixture 'scratch' failed: FileNotFoundError")
    assert result["remediation"] == "chmod u+w the directory named by acme.scratch_dir"


def test_the_plugin_declares_its_settings(mgn_kit: MgnKit, mgn_hooks: HookRecorder) -> None:
    assert mgn_kit.verify("acme").exit_code == 0
    acme_calls = [call for call in mgn_hooks.get("mgn_add_settings") if "acme" in call.plugins]
    assert len(acme_calls) == 1
    assert "settings" in acme_calls[0].kwargs
