"""Hook tracing (``MGN_TRACE_HOOKS=1``) and ``mgn plugin list``: which plugins are loaded, from
where, implementing which hooks — and no secret in the trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mgn_verify._plugins import TRACE_LINE_MAX
from tests.helpers import Run

SECRET = "s3cr3t-TOKEN-visible-nowhere"

#: A checks-dir plugin whose hooks return the secret and a huge value: both reach the trace's
#: "finish ... --> RESULT" lines, which must be redacted and bounded.
LEAKY = '''
from mgn_verify import hookimpl

@hookimpl
def mgn_configure(config):
    return config["api.token"]

@hookimpl
def mgn_register_checks(registry, config):
    return "x" * 5000

def check_ok():
    pass
'''


def _trace_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mgn-trace: ")]


def test_trace_names_hooks_plugins_and_redacts(mgn: Callable[..., Run], checks_dir: Callable[..., Path]) -> None:
    directory = checks_dir(check_leaky=LEAKY)
    run = mgn("plugin", "list", "--checks-dir", str(directory), "--set", f"api.token={SECRET}",
              env={"MGN_TRACE_HOOKS": "1"})
    assert run.exit_code == 0, run.stderr
    stderr = run.stderr
    lines = _trace_lines(stderr)
    text = "\n".join(lines)
    assert "mgn_add_settings [hook]" in text and "mgn_register_checks [hook]" in text
    assert "plugins mgn_add_settings <- " in text and "<- core [hook]" in text
    assert any("plugins mgn_register_checks <- system" in line for line in lines)
    assert any("plugins mgn_register_checks <- " in line and "check_leaky.py" in line for line in lines)
    assert any(line.endswith("finish mgn_configure --> ['***'] [hook]") for line in lines)  # redacted result
    assert any("finish mgn_register_checks --> ['xxx" in line and line.endswith("…") for line in lines)  # cut
    assert SECRET not in stderr and SECRET not in run.stdout
    assert max(len(line) for line in lines) <= TRACE_LINE_MAX + len("mgn-trace: ")
    assert "matches no setting" not in stderr  # MGN_TRACE_HOOKS is not a setting


def test_no_trace_by_default(mgn: Callable[..., Run]) -> None:
    run = mgn("plugin", "list", env={"MGN_TRACE_HOOKS": "0"})
    assert not _trace_lines(run.stderr)


def test_plugin_list_json(mgn: Callable[..., Run], checks_dir: Callable[..., Path]) -> None:
    directory = checks_dir(check_leaky=LEAKY)
    run = mgn("plugin", "list", "-o", "json", "--checks-dir", str(directory))
    assert run.exit_code == 0, run.stderr
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert rows["core"]["source"] == "builtin" and "mgn_add_settings" in rows["core"]["hooks"]
    for layer in ("system", "kubernetes", "network", "guildnet", "rethinkdb"):
        assert rows[layer]["source"] == "entry point"
        assert rows[layer]["distribution"] == "mgn-verify" and rows[layer]["version"]
        assert "mgn_register_checks" in rows[layer]["hooks"]
    leaky = next(row for name, row in rows.items() if name.endswith("check_leaky.py"))
    assert leaky["source"] == "checks-dir"
    assert leaky["hooks"] == ["mgn_configure", "mgn_register_checks"]


def test_plugin_list_table(mgn: Callable[..., Run]) -> None:
    run = mgn("plugin", "list")
    out = run.stdout
    assert out.splitlines()[0].split() == ["NAME", "SOURCE", "DISTRIBUTION", "VERSION", "HOOKS"]
    assert any(line.startswith("core ") and "builtin" in line for line in out.splitlines())
