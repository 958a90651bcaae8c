"""Loading check files: id rules, empty/duplicate parametrize, misspelled hooks, helper modules
next to check files, config-relative ``verify.checks_dirs`` and ``explain`` of an untitled check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import ISOLATED, Run

MgnRun = Callable[..., Run]
RULE = "an id is segments of letters, digits, '_' and '-' joined by single dots, e.g. 'acme.disk.free'"


@pytest.mark.parametrize(("decorator", "function", "message"), [
    ('@check(id="t.*")', "check_x", "check id 't.*' is not valid: " + RULE),
    ('@check(id="t..y")', "check_x", "check id 't..y' is not valid: " + RULE),
    ('@check(id="t.has space")', "check_x", "check id 't.has space' is not valid: " + RULE),
    ('@check(id="t.x[1]")', "check_x", "check id 't.x[1]' is not valid: " + RULE),
    ("", "check_día", f"the id 't.día' derived from 'check_día' is not valid: {RULE}; give one with @check(id=...)"),
], ids=["glob", "empty-segment", "space", "brackets", "derived"])
def test_invalid_check_ids_are_refused(mgn: MgnRun, checks_dir: Callable[..., Path], decorator: str,
                                       function: str, message: str) -> None:
    directory = checks_dir(check_t=f"from mgn_verify import check\n{decorator}\ndef {function}():\n    pass\n")
    run = mgn("verify", "list", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr == f"mgn: error: plugin '{directory / 'check_t.py'}': {message}\n"


def test_empty_parametrize_is_one_skipped_check_and_duplicates_are_named(
        mgn: MgnRun, checks_dir: Callable[..., Path]) -> None:
    # Neither the unknown fixture nor the per-value requires matter: nothing of it runs.
    directory = checks_dir(check_t='''
        from mgn_verify import check, parametrize

        @check(id="t.empty", requires="t.other[{v}]")
        @parametrize("v", [])
        def check_empty(v, no_such_fixture):
            raise AssertionError("never called")

        @parametrize("v", ["a", "b"])
        def check_full(v):
            pass

        def found(v):  # registered at run time over what was found: nothing found, no check
            pass

        def mgn_register_checks(registry):
            registry.add_check(check(id="t.found")(parametrize("v", [])(found)))
    ''')
    run = mgn("verify", "t", "--checks-dir", str(directory), *ISOLATED)
    assert run.statuses == {"t.empty": "skip", "t.full[a]": "pass", "t.full[b]": "pass"}, run.stderr
    assert run.result("t.empty")["message"] == "parametrize 'v' got an empty parameter set"

    checks_dir(check_t='''
        from mgn_verify import check, parametrize

        @check(id="x.y")
        @parametrize("v", ["a", "b", "a"])
        def check_dup(v):
            pass
    ''')
    run = mgn("verify", "list", "--checks-dir", str(directory), *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr == (f"mgn: error: plugin '{directory / 'check_t.py'}': check 'x.y': parametrize gives "
                          "the id 'x.y[a]' twice (duplicate value 'a'); give ids=[...]\n")


def test_misspelled_hook_in_a_check_file_suggests_the_hook(
        mgn: MgnRun, checks_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks_dir(check_t="def mgn_add_setting(settings):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    run = mgn("verify", "list", "--checks-dir", "checks", *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr == ("mgn: error: plugin 'checks/check_t.py': unknown hook 'mgn_add_setting' "
                          "(did you mean 'mgn_add_settings'?)\n")


def test_check_files_import_helpers_next_to_them_relatively(mgn: MgnRun, checks_dir: Callable[..., Path]) -> None:
    directory = checks_dir(
        helpers="LIMIT = 3\n\ndef check_not_a_check():\n    raise AssertionError('helpers.py is no check file')\n",
        check_t='''
            from . import helpers
            from .helpers import LIMIT

            def check_same():
                assert helpers.LIMIT == LIMIT == 3

            def check_rewritten():
                nodes = ["n1", "n2"]
                assert len(nodes) >= LIMIT
        ''')
    (directory / "sub").mkdir()
    (directory / "sub" / "local.py").write_text("NAME = 'local'\n")
    (directory / "sub" / "check_s.py").write_text(
        "from ..helpers import LIMIT\nfrom .local import NAME\n\n"
        "def check_nested():\n    assert (NAME, LIMIT) == ('local', 3)\n")
    run = mgn("verify", "--checks-dir", str(directory), *ISOLATED)
    assert run.statuses == {"t.same": "pass", "t.rewritten": "fail", "s.nested": "pass"}, run.stderr
    assert "assert 2 >= 3" in run.result("t.rewritten")["message"]  # check files are still rewritten


def test_checks_dirs_of_a_config_file_are_relative_to_it(
        mgn: MgnRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = tmp_path / "guide"
    (guide / "checks").mkdir(parents=True)
    (guide / "checks" / "check_disk.py").write_text("def check_ok():\n    pass\n")
    (guide / "mgn.yaml").write_text("verify:\n  checks_dirs: [checks]\n")
    monkeypatch.chdir(tmp_path)
    run = mgn("verify", "disk", "--config", "guide/mgn.yaml", *ISOLATED)
    assert run.statuses == {"disk.ok": "pass"}, run.stderr

    (guide / "mgn.yaml").write_text("verify:\n  checks_dirs: [missing]\n")
    run = mgn("verify", "disk", "--config", "guide/mgn.yaml", *ISOLATED)
    assert run.exit_code == 2
    assert run.stderr == "mgn: error: checks dir not found: guide/missing (verify.checks_dirs in guide/mgn.yaml)\n"
    # The environment stays relative to the current directory.
    run = mgn("verify", "disk", *ISOLATED, env={"MGN_VERIFY_CHECKS_DIRS": "checks"})
    assert run.stderr == "mgn: error: checks dir not found: checks (verify.checks_dirs from MGN_VERIFY_CHECKS_DIRS)\n"


def test_explain_of_an_untitled_check_heads_with_its_id(mgn: MgnRun, checks_dir: Callable[..., Path]) -> None:
    directory = checks_dir(check_api='''
        from mgn_verify import check

        def check_answers():
            pass

        @check(title="Answers in time")
        def check_fast():
            pass
    ''')
    run = mgn("verify", "explain", "api.answers", "--checks-dir", str(directory), *ISOLATED)
    assert run.stdout.splitlines()[0] == "api.answers", run.stderr
    run = mgn("verify", "explain", "api.fast", "--checks-dir", str(directory), *ISOLATED)
    assert run.stdout.splitlines()[0] == "api.fast: Answers in time"
