"""The README's examples are real: the example checks file is shown verbatim and runs."""

from __future__ import annotations

from tests.helpers import REPO

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


def test_every_guildnet_check_is_documented_with_a_remediation(mgn) -> None:
    import json

    rows = json.loads(mgn("verify", "list", "--json", "--set", "api.discover_clusters=false").stdout)
    pages = {layer: (REPO / "docs" / f"layers-{layer}.md").read_text()
             for layer in ("kubernetes", "tailscale", "rethinkdb", "guildnet")}
    guildnet = [row for row in rows if row["layer"] in pages]
    assert len(guildnet) >= 29
    for row in guildnet:
        base = row["id"].split("[", 1)[0]
        page = pages[row["layer"]]
        assert f"`{base}`" in page or f"`{base}[" in page, f"{base} is not in docs/layers-{row['layer']}.md"
        assert row["remediation"], f"{row['id']} has no remediation"


def test_readme_lists_every_lab_fault() -> None:
    from mgn_verify.lab import known_faults

    readme = (REPO / "README.md").read_text()
    for fault in known_faults():
        assert f"`{fault}`" in readme, fault
