"""``?watch=true`` on a list URL, as kube-apiserver streams it.

The body is one JSON object per line, ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"ERROR",
"object": {...}}``, objects with their ``apiVersion`` and ``kind``. Without ``resourceVersion``
(or with ``0``) the watch starts with a synthetic ADDED for every matching object; with one it
replays the changes after it, or sends one ERROR (410 Expired) when it is older than the changes
kept. Selectors apply to the object before and after each change, so an object that stops
matching is DELETED for the watcher and one that starts matching is ADDED. The stream ends after
``timeoutSeconds``, when the server stops, or when it goes down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType
from mgn_verify.lab.kube.store import KubeState, WatchEvent

__all__ = ["WatchRequest", "watch_stream"]

#: kube-apiserver's --min-request-timeout: a watch without timeoutSeconds lasts up to this.
MAX_WATCH_SECONDS = 1800.0
_POLL = 0.1  # how often a quiet watch re-checks time, faults and the Workspace operator


@dataclass
class WatchRequest:
    rtype: ResourceType
    namespace: str | None
    matches: Callable[[Obj], bool]  # label and field selectors together
    view: Callable[[Obj], Obj]  # what the server shows of a stored object (faults applied)
    resource_version: str
    timeout: float
    render: Callable[[Obj], Obj] | None = None  # what an event carries instead of the object (a Table row)


def _line(kind: str, obj: Obj, req: WatchRequest | None = None) -> bytes:
    shown = req.render(obj) if req is not None and req.render is not None and kind != "ERROR" else obj
    return json.dumps({"type": kind, "object": shown}).encode() + b"\n"


def _in_scope(req: WatchRequest, event: WatchEvent) -> bool:
    if event.key != req.rtype.key:
        return False
    return req.namespace is None or event.obj["metadata"].get("namespace") == req.namespace


def _translate(req: WatchRequest, event: WatchEvent) -> bytes | None:
    now = req.matches(req.view(event.obj))
    before = event.prev is not None and req.matches(req.view(event.prev))
    if event.type == "ADDED":
        return _line("ADDED", req.view(event.obj), req) if now else None
    if event.type == "DELETED":
        return _line("DELETED", req.view(event.obj), req) if now else None
    if now and before:
        return _line("MODIFIED", req.view(event.obj), req)
    if now:
        return _line("ADDED", req.view(event.obj), req)
    if before:
        return _line("DELETED", req.view(event.obj), req)
    return None


def _expired(rv: str, oldest: str) -> bytes:
    status = KubeApiError(410, "Expired", f"too old resource version: {rv} ({oldest})").status()
    return _line("ERROR", status)


def watch_stream(state: KubeState, req: WatchRequest, *, stopped: Callable[[], bool]) -> Iterator[bytes]:
    """The chunks of one watch response (see the module docstring)."""
    deadline = time.monotonic() + min(req.timeout, MAX_WATCH_SECONDS)
    if req.resource_version in ("", "0"):
        last, items = state.list_at(req.rtype, req.namespace)  # the ADDEDs and where changes resume: one moment
        for obj in items:
            shown = req.view(obj)
            if req.matches(shown):
                yield _line("ADDED", shown, req)
    else:
        try:
            last = int(req.resource_version)
        except ValueError:
            yield _expired(req.resource_version, state.resource_version)
            return
    while not stopped() and time.monotonic() < deadline:
        changes = state.changes_since(last)
        if changes is None:
            yield _expired(str(last), state.resource_version)
            return
        for event in changes:
            last = event.rv
            if _in_scope(req, event) and (line := _translate(req, event)) is not None:
                yield line
        state.wait_for_change(last, min(_POLL, max(0.0, deadline - time.monotonic())))
