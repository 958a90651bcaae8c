"""An example plugin: the ``acme`` layer. Everything a plugin can do, in a few lines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

from mgn_verify import Config, check, fixture, hookimpl, parametrize, skip
from mgn_verify.config import SettingsRegistry


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    settings.add("acme.scratch_dir", tempfile.gettempdir(), help="a directory acme writes to")
    settings.add("acme.api_key", "", secret=True, help="never shown in any report")


@fixture
def scratch(config: Config) -> Iterator[str]:
    """A scratch file, removed at the end of the run."""
    fd, path = tempfile.mkstemp(dir=config["acme.scratch_dir"], prefix="acme-")
    os.close(fd)
    yield path
    os.unlink(path)


@check(id="acme.scratch.writable", title="acme scratch dir is writable", requires=["system.os.supported"],
       remediation="chmod u+w the directory named by acme.scratch_dir")
def check_scratch_writable(scratch: str) -> dict[str, str]:
    with open(scratch, "w") as handle:
        handle.write("ok")
    return {"message": f"wrote {scratch}"}


@check(id="acme.api_key.set", title="acme API key is configured", severity="warning")
def check_api_key(config: Config) -> None:
    if not config["acme.api_key"]:
        skip("acme.api_key is not set")


@parametrize("name", ["alpha", "beta"])
@check(id="acme.names.valid", title="acme names are valid", tags=["acme"])
def check_names(name: str) -> None:
    assert name.isalpha(), f"{name!r} is not alphabetic"
