"""CI summaries: ``-o markdown`` / ``--markdown PATH`` (appended to $GITHUB_STEP_SUMMARY) and
``--github-annotations`` workflow commands, checked line by line; secrets in neither."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import ISOLATED

SECRET = "tok-SECRET-8d7c6b5a"

CHECKS = '''
from mgn_verify import check, parametrize, skip

@check(id="ci.db", remediation="start the `db` | service <now>")
def check_db(config):
    assert False, "port 5432 closed | see `ss -ltn`\\n<script>alert(1)</script> with " + config["api.token"]

@check(id="ci.app", requires=["ci.db"])
def check_app():
    pass

@check(id="ci.disk", severity="warning", remediation="free some space")
def check_disk():
    assert False, "disk 90% full"

@check(id="ci.v6")
def check_v6():
    skip("no IPv6 here")

@parametrize("cred", ["{secret}"])
@check(id="ci.login")
def check_login(cred):
    pass

@check(id="web.ok")
def check_ok():
    return {"message": "fine"}
'''.replace("{secret}", SECRET)

MARKDOWN = """\
## mgn verify: failed (exit 1)

At least one check failed. 6 checks in D: 2 pass, 1 warn, 1 fail, 1 skip, 1 blocked

### Root causes

- **ci.db** (fail): port 5432 closed \\| see \\`ss -ltn\\`<br>&lt;script&gt;alert(1)&lt;/script&gt; with \\*\\*\\*
  - blocks 1: ci.app
  - fix: start the \\`db\\` \\| service &lt;now&gt;

### ci

| Check | Status | Message | Duration |
| --- | --- | --- | --- |
| ci.db | **fail** | port 5432 closed \\| see \\`ss -ltn\\`<br>&lt;script&gt;alert(1)&lt;/script&gt; with \\*\\*\\*\
<br>fix: start the \\`db\\` \\| service &lt;now&gt; | D |
| ci.app | blocked | blocked by ci.db (fail) |  |
| ci.disk | warn | disk 90% full<br>fix: free some space | D |
| ci.login\\[\\*\\*\\*\\] | pass |  | D |
| ci.v6 | skip | no IPv6 here | D |

### web

| Check | Status | Message | Duration |
| --- | --- | --- | --- |
| web.ok | pass | fine | D |
"""

ANNOTATIONS = [
    "::error title=ci.db::port 5432 closed | see `ss -ltn`%0A<script>alert(1)</script> with ***%0Ablocks 1: ci.app"
    "%0Afix: start the `db` | service <now>",
    "::warning title=ci.disk::disk 90%25 full%0Afix: free some space",
]


def _durations(text: str) -> str:
    return re.sub(r"\b\d+ ms\b|\b\d+\.\d s\b", "D", text)


def test_markdown_and_annotations_line_by_line(mgn, checks_dir) -> None:
    directory = str(checks_dir(check_ci=CHECKS))
    run = mgn("verify", "--checks-dir", directory, *ISOLATED, "-o", "markdown", "--github-annotations",
              report=False, env={"MGN_API_TOKEN": SECRET})
    assert run.exit_code == 1, run.stderr
    assert _durations(run.stdout).splitlines() == MARKDOWN.splitlines()
    # stdout carries the markdown report: the workflow commands go to stderr (the runner reads both).
    assert [line for line in run.stderr.splitlines() if line.startswith("::")] == ANNOTATIONS
    assert SECRET not in run.stdout + run.stderr


def test_annotations_follow_the_console_report_and_escape_properties(mgn, checks_dir) -> None:
    directory = checks_dir(check_gh='''
from mgn_verify import check, parametrize, warn

@parametrize("target", ["db:5432,replica"])
@check(id="gh.port", remediation="open 100% of\\r\\nthe ports")
def check_port(target):
    assert False, "closed: 50% of\\nthem"

@check(id="gh.api")
def check_api():
    raise ConnectionError("refused")

@check(id="gh.note", severity="info")
def check_note():
    assert False, "just so you know"

@check(id="gh.old")
def check_old():
    assert False, "legacy endpoint"

@check(id="gh.ok")
def check_ok():
    pass
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--github-annotations",
              "--ignore-preflight-errors", "gh.old", report=False)
    assert run.exit_code == 1, run.stderr
    lines = run.stdout.splitlines()
    console_end = next(n for n, line in enumerate(lines) if line.startswith("Exit 1:"))
    assert "::" not in run.stderr
    assert lines[console_end + 1:] == [  # right after the console report, on stdout
        "::error title=gh.api::could not verify: ConnectionError: refused",  # root causes: by id
        "::error title=gh.port[db%3A5432%2Creplica]::closed: 50%25 of%0Athem%0Afix: open 100%25 of%0D%0Athe ports",
        "::notice title=gh.note::just so you know",  # an info-severity warn never changes the exit code
        "::notice title=gh.old::would be fail: legacy endpoint; waived: --ignore-preflight-errors",
    ]


def test_markdown_is_appended_to_the_step_summary_only(mgn, checks_dir, tmp_path: Path) -> None:
    directory = str(checks_dir(check_ok='def check_fine(): pass\n'))
    summary = tmp_path / "step_summary.md"
    summary.write_text("# Build\n\nbuilt fine")  # an earlier tool's text, without a final newline
    for _ in range(2):
        run = mgn("verify", "--checks-dir", directory, *ISOLATED, "--markdown", str(summary),
                  env={"GITHUB_STEP_SUMMARY": str(summary)})
        assert run.exit_code == 0, run.stderr
    expected_run = ["## mgn verify: passed (exit 0)", "",
                    "Nothing failed or errored (warnings allowed). 1 check in D: 1 pass, 0 fail", ""]
    body = ["### ok", "", "| Check | Status | Message | Duration |", "| --- | --- | --- | --- |",
            "| ok.fine | pass |  | D |"]
    assert _durations(summary.read_text()).split("\n") == [
        "# Build", "", "built fine", "", *expected_run, *body, "", *expected_run, *body, ""]
    # Any other path is a report file like the others: replaced whole.
    other = tmp_path / "summary.md"
    other.write_text("stale\n")
    run = mgn("verify", "--checks-dir", directory, *ISOLATED, "--markdown", str(other),
              env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert _durations(other.read_text()).split("\n") == [*expected_run, *body, ""]


def test_json_on_stdout_keeps_annotations_on_stderr(mgn_process, checks_dir) -> None:
    directory = str(checks_dir(check_ci=CHECKS))
    proc = mgn_process("verify", "--no-history", "--checks-dir", directory, *ISOLATED, "-o", "json",
                       "--github-annotations", env={"MGN_API_TOKEN": SECRET})
    assert proc.returncode == 1, proc.stderr
    assert {r["id"]: r["status"] for r in json.loads(proc.stdout)["results"]}["ci.db"] == "fail"
    assert [line for line in proc.stderr.splitlines() if line.startswith("::")] == ANNOTATIONS
    assert SECRET not in proc.stdout + proc.stderr
