"""The opt-in Workspace smoke test (``guildnet.smoke_test``): create, wait for Running, delete.

It mutates the cluster, so it is off by default. The Workspace has a random ``mgn-smoke-``
name and is always deleted, whatever happened after the create request was sent (a timeout
may hide a create that succeeded).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from mgn_verify import Config, check, skip
from mgn_verify._exceptions import ApiError, AuthError, ClientError

if TYPE_CHECKING:
    from mgn_verify.clients.hostapp import HostAppClient

__all__ = ["check_smoke_test"]

POLL_S = 0.5
NAMESPACE = "default"  # the Host App's per-cluster routes always use it (host-app notes §2.9.2)


def _wait_running(client: HostAppClient, cluster: str, name: str, timeout: float) -> tuple[str | None, float]:
    """(last phase seen, seconds waited); returns as soon as the phase is Running."""
    started = time.monotonic()
    phase: str | None = None
    while True:
        workspace = client.workspace(cluster, name)  # None: not visible yet (or any read error)
        phase = workspace.phase if workspace is not None else phase
        waited = time.monotonic() - started
        if phase == "Running" or waited >= timeout:
            return phase, waited
        time.sleep(min(POLL_S, max(timeout - waited, 0.01)))


def _cleanup(client: HostAppClient, cluster: str, name: str) -> str | None:
    """Delete the Workspace; an error text when that failed (None: gone)."""
    try:
        client.delete_workspace(cluster, name)
    except ClientError as exc:
        return f"could not delete it ({exc}): `kubectl -n {NAMESPACE} delete workspace {name}`"
    return None


@check(
    id="guildnet.cluster.smoke_test",
    title="A throwaway Workspace reaches Running through the Host App (opt-in)",
    requires="guildnet.cluster.status[{cluster}]",
    remediation="`kubectl -n default describe workspace NAME` and the operator's log "
    "(`kubectl -n guildnet-system logs deploy/workspace-operator`); mutations need the Host App's loopback "
    "address: run mgn on the Host App host",
    timeout=600,
)
def check_smoke_test(cluster: str, config: Config, guildnet_hostapp: HostAppClient,
                     guildnet_ids: dict[str, str]) -> dict[str, object]:
    if not config["guildnet.smoke_test"]:
        skip("opt-in (it creates and deletes a Workspace): set guildnet.smoke_test=true")
    client, name = guildnet_hostapp, f"mgn-smoke-{secrets.token_hex(4)}"
    cid = guildnet_ids.get(cluster, cluster)  # the Host App's id (guildnet.cluster.registered found it)
    timeout = min(float(config["guildnet.smoke_timeout"]), 540.0)
    try:
        client.create_workspace(cid, name, str(config["guildnet.smoke_image"]),
                                ports=[{"containerPort": 8080, "name": "http"}])
    except (AuthError, ApiError) as exc:  # a definite answer: nothing was created
        raise AssertionError(f"creating Workspace {name} on cluster {cluster!r} failed: {exc}") from None
    except ClientError as exc:
        left = _cleanup(client, cid, name)  # the request may have reached the app
        raise AssertionError(f"creating Workspace {name} on cluster {cluster!r}: {exc}"
                             + (f"; {left}" if left else "")) from None
    try:
        phase, waited = _wait_running(client, cid, name, timeout)
    except ClientError as exc:
        phase, waited, failure = None, 0.0, str(exc)
    else:
        failure = "" if phase == "Running" else (
            f"Workspace {name} still {phase or 'without a status (never reconciled)'} after {waited:.0f} s")
    finally:
        left = _cleanup(client, cid, name)
    if failure:
        raise AssertionError(f"cluster {cluster!r}: {failure}" + (f"; {left}" if left else "; deleted"))
    assert left is None, f"cluster {cluster!r}: Workspace {name} was Running after {waited:.1f} s, but {left}"
    return {"message": f"Workspace {name} created, Running after {waited:.1f} s, deleted",
            "workspace": name, "running_after_s": round(waited, 2)}
