"""The ``rethinkdb`` layer end to end: the real ``mgn verify rethinkdb`` (real ``rethinkdb`` driver)
against the lab's RethinkDB simulator, one subprocess per scenario, one lab for the module.

Every lab fault of the layer gives the right status on the right check, its dependents are
``blocked`` and the root cause is named; the password appears in no output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mgn_verify.lab import Lab
from mgn_verify.testing import VerifyRun, run_verify

C = "[lab]"
ALL = ["reachable", "auth", "admin.password", "version", "latency", "issues", "servers", "tables.ready",
       "tables.replicas", "write_test"]
QUERYING = ["version", "latency", "issues", "servers", "tables.ready", "tables.replicas", "write_test"]


def cid(name: str) -> str:
    return f"rethinkdb.{name}{C}"


def verify(lab: Lab, *extra: str) -> VerifyRun:
    return run_verify(["rethinkdb", "--config", str(lab.config_path), *extra])


def statuses(run: VerifyRun) -> dict[str, str]:
    return {k.removeprefix("rethinkdb.").removesuffix(C): v for k, v in run.statuses().items()}


def root_causes(run: VerifyRun) -> dict[str, list[str]]:
    assert run.report is not None
    return {c["id"]: c["blocks"] for c in run.report["summary"]["root_causes"]}


def test_healthy_lab_is_green(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    assert run.exit_code == 0, run.stdout
    assert statuses(run) == dict.fromkeys(ALL, "pass")
    assert run.result(cid("servers"))["message"] == "1 server(s) connected: rethinkdb_0"
    assert run.result(cid("tables.ready"))["details"]["databases"] == ["org_lab__default"]
    assert run.result(cid("version"))["message"].startswith("rethinkdb_0 2.4.4")
    assert "wrote, read back and deleted a document in mgn_verify.scratch" in run.result(cid("write_test"))["message"]


@pytest.mark.mgn_lab_faults("rethinkdb.down")
def test_down_is_one_root_cause(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert run.exit_code == 1 and s["reachable"] == "fail"
    assert run.result(cid("reachable"))["message"] == (
        f"127.0.0.1:{mgn_lab_session.rethinkdb.port}: connection refused (address from rethinkdb.host)")
    assert {k for k, v in s.items() if v == "blocked"} == set(ALL) - {"reachable"}
    assert set(root_causes(run)) == {cid("reachable")}
    assert "Root causes (fix these first):" in run.stdout


@pytest.mark.mgn_lab_faults("rethinkdb.bad_password")
def test_bad_password_fails_auth_without_a_traceback(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert s["auth"] == "fail" and s["reachable"] == "pass" and s["admin.password"] == "pass"
    assert run.result(cid("auth"))["message"] == "authentication failed for user admin: wrong password"
    assert all(s[name] == "blocked" for name in QUERYING)
    assert root_causes(run) == {cid("auth"): sorted(cid(n) for n in QUERYING)}
    assert "Traceback" not in run.stdout + run.stderr and "Reql" not in run.stdout


@pytest.mark.mgn_lab_faults("rethinkdb.critical_issue")
def test_critical_issue_is_the_one_root_cause(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert run.exit_code == 1
    assert {k for k, v in s.items() if v != "pass"} == {"issues", "servers", "tables.ready"}
    assert s["issues"] == "fail" and s["servers"] == s["tables.ready"] == "blocked"
    # The server's own description, verbatim; the server it names is the one missing.
    assert run.result(cid("issues"))["message"] == (
        "1 critical issue(s): [table_availability] Table `org_lab__default._audit` is available for outdated "
        "reads, but not up-to-date reads or writes. The following servers are not reachable: rethinkdb_1")
    # Waived, the issue lets the server and table checks say what they see.
    waived = verify(mgn_lab_session, "--ignore-preflight-errors", cid("issues"))
    assert waived.result(cid("servers"))["message"] == (
        "rethinkdb_1 is not connected (holds a replica of org_lab__default._audit)")
    assert waived.result(cid("tables.ready"))["message"] == (
        "org_lab__default._audit not ready for writes (rethinkdb_0 waiting_for_quorum, rethinkdb_1 disconnected)")
    assert s["write_test"] == "pass"  # a new scratch table lives on the connected server only


@pytest.mark.mgn_lab_faults("rethinkdb.table_not_ready")
def test_table_not_ready_fails_the_tables_check_only(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert {k for k, v in s.items() if v != "pass"} == {"tables.ready"} and s["tables.ready"] == "fail"
    assert run.result(cid("tables.ready"))["message"] == (
        "org_lab__default._audit not ready for writes (rethinkdb_0 waiting_for_quorum, rethinkdb_2 backfilling)")
    assert run.result(cid("servers"))["message"] == "2 server(s) connected: rethinkdb_0, rethinkdb_2"


@pytest.mark.mgn_lab_faults("rethinkdb.slow")
def test_slow_warns_on_latency(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", "rethinkdb.write_test=false")
    s = statuses(run)
    assert run.exit_code == 0 and s["latency"] == "warn"
    assert {k for k, v in s.items() if v not in ("pass", "skip")} == {"latency"}
    message = run.result(cid("latency"))["message"]
    took = re.match(r"a trivial query took (\d+) ms at best of 2 \(rethinkdb.latency_warn: 250 ms\)$", message)
    assert took and int(took.group(1)) >= 500, message


@pytest.mark.mgn_lab_faults("rethinkdb.replica_lagging")
def test_replica_lagging_warns_on_tables(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert run.exit_code == 0 and {k for k, v in s.items() if v != "pass"} == {"tables.ready"}
    assert s["tables.ready"] == "warn"
    assert run.result(cid("tables.ready"))["message"] == (
        "writable, but not all replicas are ready: org_lab__default._info (rethinkdb_2 backfilling)")
    assert run.result(cid("tables.replicas"))["status"] == "pass"


@pytest.mark.mgn_lab_faults("rethinkdb.replica_unreachable")
def test_replica_unreachable_is_a_non_critical_issue(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert s["issues"] == "warn" and s["tables.ready"] == "warn" and s["servers"] == "fail"
    assert run.result(cid("issues"))["message"] == (
        "1 issue(s): [table_availability] Table `org_lab__default._info` is available for all operations, but "
        "some replicas are not ready. The following servers are not reachable: rethinkdb_2")
    assert run.result(cid("servers"))["message"] == (
        "rethinkdb_2 is not connected (holds a replica of org_lab__default._info)")


@pytest.mark.mgn_lab_faults("rethinkdb.no_password")
def test_no_password_fails_the_password_check(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session)
    s = statuses(run)
    assert s["admin.password"] == "fail"
    assert run.result(cid("admin.password"))["message"].startswith(
        "admin has no password: a login as admin with an empty password")
    # The configured password is no longer admin's: the login fails too, and blocks the queries.
    assert s["auth"] == "fail" and all(s[name] == "blocked" for name in QUERYING)
    # GuildNet's stock setup (no password configured, none set): only the password check fails.
    run = verify(mgn_lab_session, "--set", "rethinkdb.password=")
    assert {k for k, v in statuses(run).items() if v != "pass"} == {"admin.password"}


def test_thresholds_turn_into_findings(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", "rethinkdb.min_replicas=2", "--set", "rethinkdb.max_version=2.3",
                 "--set", 'rethinkdb.expected_servers=["rethinkdb_0", "rethinkdb_9"]',
                 "--set", "rethinkdb.write_test=false")
    s = statuses(run)
    assert s["tables.replicas"] == "warn"
    assert run.result(cid("tables.replicas"))["message"] == (
        "fewer than 2 replica(s) per shard: org_lab__default._audit has 1, org_lab__default._info has 1, "
        "org_lab__default._schemas has 1")
    assert s["version"] == "fail" and run.result(cid("version"))["message"] == (
        "rethinkdb_0 runs 2.4.4 (supported: 2.3 to 2.3.x)")
    assert s["servers"] == "fail" and run.result(cid("servers"))["message"] == (
        "rethinkdb_9 is not connected (listed in rethinkdb.expected_servers)")
    assert s["write_test"] == "skip"


def test_other_databases_are_not_guildnets(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", 'rethinkdb.databases=["org_elsewhere__*"]')
    assert statuses(run)["tables.ready"] == "skip"
    assert "none matches org_elsewhere__*" in run.result(cid("tables.ready"))["message"]


def test_address_discovered_through_the_cluster_service(mgn_lab_session: Lab) -> None:
    run = verify(mgn_lab_session, "--set", "rethinkdb.host=", "--set", "rethinkdb.port=1")
    assert run.exit_code == 0, run.stdout
    assert run.result(cid("reachable"))["details"]["source"] == "Service default/rethinkdb (LoadBalancer ingress)"
    assert run.result(cid("reachable"))["details"]["address"] == f"127.0.0.1:{mgn_lab_session.rethinkdb.port}"


def test_nothing_found_skips_in_all_and_fails_when_named(mgn_lab_session: Lab) -> None:
    lost = ["--set", "rethinkdb.host=", "--set", "rethinkdb.service=nope", "--set", "rethinkdb.port=1"]
    named = verify(mgn_lab_session, *lost)
    assert statuses(named)["reachable"] == "fail" and named.exit_code == 1
    assert "nothing listens at 127.0.0.1:1 (no address from Service default/nope: Service default/nope not found)" \
        in named.result(cid("reachable"))["message"]
    everything = run_verify(["all", "--check", "rethinkdb.*", "--config", str(mgn_lab_session.config_path), *lost])
    assert everything.result(cid("reachable"))["status"] == "skip"
    assert everything.result(cid("reachable"))["message"].startswith("not configured: set rethinkdb.host")
    assert everything.exit_code == 0


@pytest.mark.parametrize("fault", [None, "rethinkdb.bad_password", "rethinkdb.critical_issue"])
def test_the_password_appears_in_no_output(mgn_lab_session: Lab, tmp_path: Path, fault: str | None) -> None:
    if fault:
        mgn_lab_session.inject(fault)
    junit = tmp_path / "junit.xml"
    run = verify(mgn_lab_session, "-v", "--junit", str(junit))
    secret = mgn_lab_session.rethinkdb_password
    assert run.report is not None and junit.exists()
    for name, text in (("console", run.stdout + run.stderr), ("json", str(run.report)), ("junit", junit.read_text())):
        assert secret not in text, f"the RethinkDB password leaked into the {name} output"
    assert "rethinkdb.auth" in junit.read_text()


@pytest.fixture(scope="module")
def two_clusters() -> Iterator[Lab]:
    with Lab(clusters=("lab", "lab-2")) as lab:
        yield lab


def test_one_broken_cluster_blocks_only_its_own_checks(two_clusters: Lab) -> None:
    two_clusters.inject("rethinkdb.bad_password", cluster="lab-2")
    try:
        run = run_verify(["rethinkdb", "--config", str(two_clusters.config_path)])
    finally:
        two_clusters.clear_all()
    by_id: dict[str, Any] = run.statuses()
    assert all(by_id[f"rethinkdb.{n}[lab]"] == "pass" for n in ALL)
    assert by_id["rethinkdb.auth[lab-2]"] == "fail" and by_id["rethinkdb.issues[lab-2]"] == "blocked"
    assert run.result("rethinkdb.auth[lab-2]")["target"] == "lab-2"
    assert run.result("rethinkdb.tables.ready[lab]")["details"]["databases"] == ["org_lab__default"]
    # Each cluster's own database: org_<cluster>__default.
    healthy = run_verify(["rethinkdb", "--config", str(two_clusters.config_path), "--cluster", "lab-2"])
    assert healthy.result("rethinkdb.tables.ready[lab-2]")["details"]["databases"] == ["org_lab-2__default"]


# -- helpers, unit level ---------------------------------------------------------------------------


def test_version_parsing_and_range() -> None:
    from mgn_verify.checks._rdb_conn import _within, parse_version

    assert parse_version("rethinkdb 2.4.4~0bookworm (x86_64-linux-gnu) (GCC 12.2.0)") == (2, 4, 4)
    assert parse_version("2.4") == (2, 4) and parse_version("unknown") is None
    assert _within((2, 4, 4), (2, 3), (2, 4)) and _within((2, 3, 0), (2, 3), (2, 4))
    assert not _within((2, 5, 0), (2, 3), (2, 4)) and not _within((2, 2, 9), (2, 3), (2, 4))


def test_guildnet_database_names() -> None:
    from mgn_verify.checks._rdb_common import guildnet_databases, org_name

    from mgn_verify.testing import make_config

    assert org_name("Prod East/1") == "prod_east_1" and org_name("") == "default"
    config = make_config()
    dbs, patterns = guildnet_databases(config, "Prod-East", ["org_prod-east__a", "org_other__b", "rethinkdb", "test"])
    assert dbs == ["org_prod-east__a"] and patterns == ["org_prod-east__*"]


def test_the_layer_imports_no_driver_until_a_check_runs() -> None:
    import subprocess
    import sys

    code = ("import sys, mgn_verify.checks.rethinkdb as m; "
            "assert 'rethinkdb' not in sys.modules and 'kubernetes' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_query_that_never_answers_ends_at_its_deadline(mgn_lab: Lab) -> None:
    import time

    mgn_lab.rethinkdb.slow_delay = 60.0  # every answer stalls far past every deadline
    mgn_lab.inject("rethinkdb.slow")
    started = time.monotonic()
    run = verify(mgn_lab, "--set", "rethinkdb.timeout=1", "--timeout", "3")
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # each query is cut off; nothing waits for the 60 s answers
    report = run.report or {}
    assert not [e for e in report["summary"]["errors"] if "teardown" in e], report["summary"]["errors"]
    stalled = [r for r in report["results"] if "no answer within" in r["message"]]
    assert stalled, [(r["id"], r["status"], r["message"]) for r in report["results"]]
    assert run.exit_code in (1, 3)
