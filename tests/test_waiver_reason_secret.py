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


def test_an_option_whose_value_is_a_secret_pair_is_masked_in_argv() -> None:
    from mgn_verify.config.redact import scrub_argv

    argv = ["mgn", "workspace", "create", "lab", "--env=DB_PASSWORD=hunter2", "--env", "API_TOKEN=t0k",
            "--label=team=a"]
    shown = scrub_argv(argv)
    assert "hunter2" not in " ".join(shown) and "t0k" not in " ".join(shown)
    assert "--env=DB_PASSWORD=***" in shown and "--label=team=a" in shown
