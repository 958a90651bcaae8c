"""A waiver's reason is free text (config `verify.waivers[].reason`, a lifecycle command's
`--reason`): a secret quoted in it is masked in the JSON report like everywhere else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Run

SECRET = "SECRETXYZ123abc"


def test_a_secret_in_a_waiver_reason_is_masked_in_the_json_report(tmp_path: Path,
                                                                  mgn: Callable[..., Run]) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "check_acme.py").write_text(
        "from mgn_verify import check\n\n@check(id='acme.broken')\ndef check_broken():\n    assert False, 'down'\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"api: {{token: {SECRET}}}\n"
                      f"verify:\n  waivers: [{{id: acme.broken, reason: 'token {SECRET} was pasted here'}}]\n")
    run = mgn("verify", "acme", "--checks-dir", str(checks), "--config", str(config))
    result = run.result("acme.broken")
    assert result["status"] == "waived", result
    assert SECRET not in json.dumps(run.report)
    assert "***" in result["waiver"]["reason"]
