"""Issue 9, "Secrets never leak": non-string details, parametrized ids and targets, URL passwords,
argv when loading failed, hook exception text; and the documented redaction rules."""

from __future__ import annotations

import ast
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


# -- review R2: secret-looking names, reprs cut after redaction, passwords holding "@", hooks ---

OTHER = "pw-Qq72x9Lm"


def test_secret_looking_setting_names_are_masked_declared_or_not(mgn, checks_dir, tmp_path: Path) -> None:
    directory = checks_dir(check_acme='''
from mgn_verify import check
def mgn_add_settings(settings):
    settings.add("acme.api_token", "", help="not declared secret=True, but its name says it is")
    settings.add("acme.keys", [], kind="list", help="a list under a harmless name")
    settings.add("acme.credentials", [], kind="list", help="a list under a secret-looking name")
@check(id="acme.login")
def check_login(config):
    assert False, ("rejected " + config["acme.api_token"] + " " + config["acme.db_password"] + " "
                   + " ".join(config["acme.credentials"]))
''')
    config = tmp_path / "c.yaml"
    config.write_text(f"acme:\n  api_token: {TOKEN}\n  db_password: {OTHER}\n  credentials: [{URL_PASSWORD}]\n")
    shown = mgn("config", "show", "--checks-dir", str(directory), "--config", str(config))
    assert shown.exit_code == 0, shown.stderr
    assert TOKEN not in shown.stdout + shown.stderr and URL_PASSWORD not in shown.stdout
    assert "acme.api_token" in shown.stdout and "acme.credentials" in shown.stdout
    run = mgn("verify", "--checks-dir", str(directory), "--config", str(config), *ISOLATED, "-v")
    assert run.exit_code == 1
    everything = json.dumps(run.report) + run.stdout + run.stderr
    assert TOKEN not in everything and OTHER not in everything and URL_PASSWORD not in everything
    assert run.result("acme.login")["message"].endswith("rejected *** *** ***")
    by_flag = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--set", f"acme.api_token={TOKEN}",
                  env={"MGN_ACME_DB_PASSWORD": "unset-here"})
    assert TOKEN not in json.dumps(by_flag.report) + by_flag.stdout + by_flag.stderr


def test_a_short_value_of_a_secret_looking_setting_is_masked_in_config_show(mgn, checks_dir) -> None:
    directory = checks_dir(check_short='''
def mgn_add_settings(settings):
    settings.add("acme.pin_password", "", help="short")
    settings.add("acme.retry_token", 3, help="an int under a secret-looking name")
def check_ok(): pass
''')
    shown = mgn("config", "show", "--checks-dir", str(directory), "--set", "acme.pin_password=zq")
    assert shown.exit_code == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if "acme.pin_password" in line)
    assert "zq" not in line and REDACTED in line
    bad = mgn("config", "show", "--checks-dir", str(directory), "--set", f"acme.retry_token={TOKEN}")
    assert bad.exit_code == 2 and "acme.retry_token" in bad.stderr and TOKEN not in bad.stdout + bad.stderr


def straddling(secret: str) -> Holder:
    """An object whose repr is cut (at 1000 characters) in the middle of ``secret``."""
    return Holder("x" * (1000 - len("Holder('") - len(secret) // 2) + secret)


def test_a_long_repr_is_redacted_before_it_is_cut() -> None:
    from mgn_verify._safejson import to_safe_json
    from mgn_verify.config.redact import safe_repr

    r = redactor(TOKEN)
    head = TOKEN[:len(TOKEN) // 2]
    assert len(safe_repr(Holder("y" * 5000), redactor=r)) < 1100  # still bounded
    for shown in (safe_repr(straddling(TOKEN)), safe_repr(straddling(TOKEN), redactor=r),
                  r.data({"h": straddling(TOKEN)})["h"], to_safe_json({"h": straddling(TOKEN)}, r)["h"]):
        assert isinstance(shown, str) and head not in shown and shown.endswith("***')")
    url = f"https://u:{URL_PASSWORD}@h"
    assert URL_PASSWORD[:4] not in safe_repr(straddling(url)) + Redactor().data(straddling(url))


def test_objects_always_come_back_as_text() -> None:
    r = redactor(TOKEN)
    assert r.data(Holder("harmless")) == "Holder('harmless')"
    assert r.data([straddling(TOKEN)])[0].startswith("Holder('xxx")


def test_a_long_repr_in_details_is_cut_after_redaction_in_every_report(mgn, checks_dir) -> None:
    directory = checks_dir(check_r=f'''
class Holder:
    def __repr__(self): return "Holder(" + "x" * (1000 - len("Holder(") - 8) + {TOKEN!r} + ")"
def check_holder(): return {{"h": Holder()}}
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "-v", env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 0, run.stderr
    assert TOKEN[:8] not in json.dumps(run.report) + run.stdout


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:p@ss@host", "https://user:***@host"),
    ("https://user:p@ss@host:8443/path?q=a@b#frag", "https://user:***@host:8443/path?q=a@b#frag"),
    ("https://u:a:b@c@[::1]:6443/x", "https://u:***@[::1]:6443/x"),
    ("https://:p@ss@host", "https://:***@host"),
    ("https://user:@host", "https://user:@host"),
    ("https://user@host:8443/x@y", "https://user@host:8443/x@y"),
    ("https://us@er:p@ss@host", "https://us@er:***@host"),
    ("url='https://u:p@ss@h' next", "url='https://u:***@h' next"),
    ('{"url": "https://u:p@ss@h"}', '{"url": "https://u:***@h"}'),
    ("a https://u:p@1@h1/x and https://v:q@2@h2?y end", "a https://u:***@h1/x and https://v:***@h2?y end"),
    ("https://u:x@h1,https://v:y@z@h2", "https://u:***@h1,https://v:***@h2"),
    ("mail bob@example.com https://u:p@ss@h\nnext@line", "mail bob@example.com https://u:***@h\nnext@line"),
])
def test_url_passwords_holding_at_signs_are_masked_up_to_the_last_at(text: str, expected: str) -> None:
    from urllib.parse import urlsplit

    assert Redactor().text(text) == expected
    for word in text.replace("'", " ").replace('"', " ").replace(",", " ").split():
        if "://" in word and urlsplit(word).password:  # the password urllib (and httpx) would send
            assert urlsplit(word).password not in Redactor().text(text)


def test_results_decided_without_running_reach_hooks_redacted(mgn, checks_dir, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    directory = checks_dir(check_h=f'''
from mgn_verify import check, parametrize, skip
@parametrize("tok", [{TOKEN!r}])
@check(id="h.login", title="login with {{tok}}", remediation="rotate {{tok}}")
def check_login(tok): assert False, "rejected"
@check(id="h.after", requires=["h.login"], title="after {TOKEN}")
def check_after(): pass
@parametrize("tok", [{TOKEN!r}])
@check(id="h.optional")
def check_optional(tok): skip("not here")
@check(id="h.later", requires=["h.optional"], remediation="see {TOKEN}")
def check_later(): pass
@check(id="h.skipped", title="skipped {TOKEN}")
def check_skipped(): pass
@check(id="h.needs_skipped", requires=["h.skipped"])
def check_needs_skipped(): pass
def mgn_result(result):
    with open({str(seen)!r}, "a") as out:
        out.write(repr((result.id, result.title, result.message, result.remediation, result.target)) + "\\n")
''')
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED, "--skip", "h.skipped",
              env={"MGN_API_TOKEN": TOKEN})
    assert run.exit_code == 1
    seen_by_hooks = [ast.literal_eval(line) for line in seen.read_text().splitlines()]
    assert len(seen_by_hooks) == 6
    # Ids are masked when the reports are rendered (the scheduler keys its results by them).
    assert not [fields for _, *fields in seen_by_hooks if TOKEN in repr(fields)]
    by_id = {cid.split("[")[0]: fields for cid, *fields in seen_by_hooks}
    assert by_id["h.after"][1] == "blocked by h.login[***] (fail)" and by_id["h.after"][0] == "after ***"
    assert by_id["h.later"][1] == "not applicable: requires h.optional[***] which was skipped"
    assert by_id["h.skipped"][0] == "skipped ***" and by_id["h.later"][2] == "see ***"
