"""The README's examples are real: the example checks file is shown verbatim and runs."""

from __future__ import annotations

from tests.conftest import REPO

EXAMPLE = REPO / "docs" / "examples" / "checks" / "check_acme.py"


def test_readme_shows_the_example_verbatim() -> None:
    assert f"```python\n{EXAMPLE.read_text()}```" in (REPO / "README.md").read_text()


def test_the_example_runs(mgn) -> None:
    # The disk floor is lowered: this is about the example, not about the test machine's disk.
    run = mgn("verify", "acme", "--checks-dir", str(EXAMPLE.parent), "--set", "system.min_disk_free_gb=0")
    assert run.exit_code == 0, run.stderr
    assert run.statuses == {
        "system.os.supported": "pass", "system.disk.free": "pass", "acme.arithmetic": "pass",
        "acme.loopback.connect[ipv4]": "pass", "acme.loopback.connect[ipv6]": "warn",
        "acme.tmp.writable": "pass",
    }
    assert run.result("acme.loopback.connect[ipv4]")["message"].startswith("connected to 127.0.0.1:")


def test_readme_documents_every_exit_code_and_status() -> None:
    from mgn_verify import ExitCode, Status

    readme = (REPO / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | {code.meaning}" in readme
    for status in Status:
        assert f"| `{status}` |" in readme
