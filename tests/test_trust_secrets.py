"""Issue 9, "Secrets never leak": non-string details, parametrized ids and targets, URL passwords,
argv when loading failed, hook exception text; and the documented redaction rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mgn_verify.config.redact import MIN_SECRET_LEN, REDACTED, Redactor, scrub_argv
from tests.helpers import ISOLATED

TOKEN = "tok-9f8e7d6c5b4a"
URL_PASSWORD = "pw-Zz81q0"


def redactor(*secrets: str) -> Redactor:
    r = Redactor()
    for secret in secrets:
        r.add(secret)
    return r


class Holder:
    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder({self.value!r})"


# -- F1: inside non-string values ---------------------------------------------------------------

def test_redactor_data_reaches_into_every_kind_of_value() -> None:
    r = redactor(TOKEN)
    value = {TOKEN: "as a key", "bytes": f"Bearer {TOKEN}".encode(), "set": {TOKEN, "x"},
             "tuple": ("a", TOKEN), "nested": [{"deep": (TOKEN,)}], "object": Holder(TOKEN), "n": 3, "f": 1.5,
             "none": None, (TOKEN, 1): "tuple key"}
    out = r.data(value)
    assert TOKEN not in repr(out)
    assert out["***"] == "as a key" and out["bytes"] == b"Bearer ***"
    assert out["set"] == {"***", "x"} and out["tuple"] == ("a", "***")
    assert out["nested"] == [{"deep": ("***",)}]
    assert out["object"] == "Holder('***')"
    assert (out["n"], out["f"], out["none"]) == (3, 1.5, None)
    loop: dict[str, object] = {"k": TOKEN}
    loop["self"] = loop
    assert r.data(loop) == {"k": "***", "self": "<cycle>"}  # never recurses forever


def test_non_string_details_are_redacted_in_every_report(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_s=f'''
from mgn_verify import check
class Holder:
    def __repr__(self): return "Holder(" + {TOKEN!r} + ")"
@check(id="s.details")
def check_details():
    return {{"bytes": b"Bearer " + {TOKEN!r}.encode(), "set": {{{TOKEN!r}}}, "tuple": ("a", {TOKEN!r}),
             "object": Holder(), {TOKEN!r}: "key", 7: [Holder()]}}
''')
    junit = tmp_path / "j.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--junit", str(junit), "-v",
              env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 0, run.stderr
    assert TOKEN not in json.dumps(run.report) + junit.read_text() + run.stdout + run.stderr
    details = run.result("s.details")["details"]
    assert details["bytes"] == "Bearer ***" and details["set"] == ["***"] and details["object"] == "Holder(***)"
    assert details["***"] == "key" and details["7"] == ["Holder(***)"]


# -- F2: ids and targets built from secret values ------------------------------------------------

def test_parametrized_ids_and_targets_from_secrets_are_redacted_everywhere(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_p=f'''
from mgn_verify import check, parametrize, skip
@parametrize("tok", [{TOKEN!r}])
@check(id="p.login", title="login with {{tok}}")
def check_login(tok): assert False, "rejected"
@check(id="p.after", requires=["p.login"])
def check_after(): pass
@parametrize("tok", [{TOKEN!r}])
@check(id="p.optional")
def check_optional(tok): skip("not here")
@check(id="p.later", requires=["p.optional"])
def check_later(): pass
''')
    junit = tmp_path / "j.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--junit", str(junit),
              env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 1
    everything = json.dumps(run.report) + junit.read_text() + run.stdout + run.stderr
    assert TOKEN not in everything
    assert run.result("p.login[***]")["target"] == "***"
    assert run.result("p.after")["blocked_by"] == ["p.login[***]"]
    assert run.result("p.after")["message"] == "blocked by p.login[***] (fail)"
    assert "p.optional[***]" in run.result("p.later")["message"]
    assert run.report["summary"]["root_causes"][0]["id"] == "p.login[***]"
    assert 'name="p.login[***]"' in junit.read_text()


def test_a_hooks_exception_text_is_redacted(mgn, checks_dir) -> None:
    directory = checks_dir(check_h='''
def check_ok(): pass
def mgn_run_start(plan):
    import os
    raise RuntimeError("cannot reach api with " + os.environ["MGN_API_TOKEN"])
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, env={"MGN_API_TOKEN": TOKEN})
    assert TOKEN not in json.dumps(run.report) + run.stdout + run.stderr
    assert any("cannot reach api with ***" in error for error in run.report["summary"]["errors"])


# -- F3: URL userinfo passwords are secrets everywhere -------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("https://admin:hunter2@db.example:8443/x", "https://admin:***@db.example:8443/x"),
    ("see rethinkdb://u:p%40ss@h/db and postgres://x:y@z", "see rethinkdb://u:***@h/db and postgres://x:***@z"),
    ("https://user@host/no-password", "https://user@host/no-password"),
    ("https://:tok@host", "https://:***@host"),
    ("not a url: a:b@c", "not a url: a:b@c"),
])
def test_url_passwords_are_masked_without_registration(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected
    assert Redactor().data({"k": [text]}) == {"k": [expected]}


def test_url_passwords_never_reach_any_output(mgn, checks_dir, tmp_path: Path) -> None:
    url = f"https://admin:{URL_PASSWORD}@db.example:8443"
    directory = checks_dir(check_u=f'''
from mgn_verify import check, parametrize
@parametrize("url", [{url!r}])
@check(id="u.reach")
def check_reach(url):
    print("connecting to", url)
    assert False, f"cannot reach {{url}}"
@check(id="u.after", requires=["u.reach"])
def check_after(): pass
''')
    junit = tmp_path / "j.xml"
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--junit", str(junit))
    assert run.exit_code == 1
    assert URL_PASSWORD not in json.dumps(run.report) + junit.read_text() + run.stdout + run.stderr
    assert run.result("u.reach[https://admin:***@db.example:8443]")["message"].endswith("admin:***@db.example:8443")
    config = tmp_path / "c.yaml"
    config.write_text(f"network:\n  https_endpoints: ['{url}/healthz']\n")
    shown = mgn("config", "show", "--config", str(config))
    assert shown.exit_code == 0, shown.stderr
    assert URL_PASSWORD not in shown.stdout and "admin:***@db.example" in shown.stdout


# -- F4: argv when loading failed -----------------------------------------------------------------

def test_scrub_argv_masks_every_secret_looking_argument() -> None:
    argv = ["mgn", "--set", "api.token=abc", "--set=acme.password=x", "--set", "verify.timeout=3",
            "api.token=notaflag", "MGN_API_TOKEN=envstyle", "--set", "api.token:colon-typo",
            f"https://u:{URL_PASSWORD}@h", "--set", f"network.proxy=http://u:{URL_PASSWORD}@p",
            "--api-key=inline", "--password", "separate"]
    assert scrub_argv(argv) == [
        "mgn", "--set", "api.token=***", "--set=acme.password=***", "--set", "verify.timeout=3",
        "api.token=***", "MGN_API_TOKEN=***", "--set", "api.token:***", "https://u:***@h",
        "--set", "network.proxy=http://u:***@p", "--api-key=***", "--password", "***"]


def test_argv_of_a_failed_load_never_shows_a_secret(mgn_process, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = mgn_process("verify", "--set", "acme.api_key=sekrit-value", "--set", f"x.url=https://u:{URL_PASSWORD}@h",
                       "--config", str(tmp_path / "missing.yaml"), "--json", str(out), "-o", "json")
    assert proc.returncode == 2
    assert "sekrit-value" not in out.read_text() + proc.stdout + proc.stderr
    assert URL_PASSWORD not in out.read_text() + proc.stdout + proc.stderr
    argv = json.loads(out.read_text())["run"]["argv"]
    assert "acme.api_key=***" in argv and "x.url=https://u:***@h" in argv


# -- F5: the documented rules ----------------------------------------------------------------------

def test_the_minimum_secret_length_is_documented_and_enforced() -> None:
    assert MIN_SECRET_LEN == 3
    short, long_enough = "x" * (MIN_SECRET_LEN - 1), "y" * MIN_SECRET_LEN
    r = redactor(short, long_enough)
    assert r.text(f"{short} {long_enough}") == f"{short} {REDACTED}"
    import mgn_verify.config.redact as module

    assert f"at least {MIN_SECRET_LEN} characters" in (module.__doc__ or "")
