"""List options as kube-apiserver applies them: ``labelSelector``, ``fieldSelector``, ``limit``
and ``continue``.

Label selectors follow ``apimachinery/pkg/labels/selector.go`` (``=``, ``==``, ``!=``, ``in``,
``notin``, ``key``, ``!key``, ``gt``/``lt``); ``!=`` and ``notin`` also match objects without the
label. Field selectors follow ``apimachinery/pkg/fields`` (``=``, ``==``, ``!=``; a field the
resource does not index is ``400 field label not supported``). Continue tokens are base64url
JSON ``{"v": "meta.k8s.io/v1", "rv": N, "start": "<key>\\x00"}`` as the etcd3 store writes them;
``remainingItemCount`` is sent only when no selector filtered the list.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj, ResourceType

__all__ = ["FIELDS", "Page", "field_matcher", "label_matcher", "paginate"]

Matcher = Callable[[Obj], bool]

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_TERM = re.compile(r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>(),]+)\s*(?:(?P<op>==|=|!=|<|>)\s*(?P<value>[^\s,()]*)"
                   r"|\s+(?P<set>in|notin)\s*\((?P<values>[^()]*)\))?\s*$")


def _bad_label(detail: str) -> KubeApiError:
    return KubeApiError(400, "BadRequest", f"unable to parse requirement: {detail}")


def _split_terms(selector: str) -> list[str]:
    """Commas separate requirements, except inside ``in (a,b)``."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def _requirement(term: str) -> Matcher:
    m = _TERM.match(term)
    if m is None:
        raise _bad_label(f"found '{term.strip()}', expected: a requirement such as key=value or key in (a,b)")
    key = m["key"]
    if not _LABEL_KEY.match(key):
        raise _bad_label(f'key: Invalid value: "{key}": name part must consist of alphanumeric characters, '
                         "'-', '_' or '.'")
    if m["neg"]:
        if m["op"] or m["set"]:
            raise _bad_label(f"found '{term.strip()}', expected: key, !key, key=value, key in (...)")
        return lambda labels: key not in labels
    if m["set"]:
        values = {v.strip() for v in m["values"].split(",") if v.strip()}
        if not values:
            raise _bad_label(f"for '{m['set']}' and 'notin' operators, values set can't be empty ({key})")
        if m["set"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    op, value = m["op"], m["value"]
    if op is None:
        return lambda labels: key in labels
    if not _LABEL_VALUE.match(value or ""):
        raise _bad_label(f'values[0][{key}]: Invalid value: "{value}": a valid label must be an empty string or '
                         "consist of alphanumeric characters, '-', '_' or '.'")
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if not value.lstrip("-").isdigit():
        raise _bad_label(f"for 'Gt', 'Lt' operators, the value must be an integer ({key})")
    bound = int(value)

    def compare(labels: dict[str, str]) -> bool:
        have = labels.get(key, "")
        if not have.lstrip("-").isdigit():
            return False
        return int(have) > bound if op == ">" else int(have) < bound

    return compare


def label_matcher(selector: str | None) -> Matcher:
    """A predicate on objects for a ``labelSelector``; raises a 400 ``KubeApiError`` when invalid."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = [_requirement(term) for term in _split_terms(selector)]

    def matches(obj: Obj) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


# -- field selectors -------------------------------------------------------------------------------

def _path(*keys: str) -> Callable[[Obj], str]:
    def get(obj: Obj) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return get


def _dotted(*names: str) -> dict[str, Callable[[Obj], str]]:
    return {name: _path(*name.split(".")) for name in names}


_EVENT_FIELDS = {
    **_dotted("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "type"),
    "source": lambda obj: str((obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""),
}

#: The fields each resource indexes beyond ``metadata.name`` (and ``metadata.namespace`` when
#: namespaced): ``pkg/registry/<group>/<resource>/strategy.go`` and the field label conversions.
FIELDS: dict[tuple[str, str], dict[str, Callable[[Obj], str]]] = {
    ("", "pods"): _dotted("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                          "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "events"): _EVENT_FIELDS,
    ("", "nodes"): _dotted("spec.unschedulable"),
    ("", "namespaces"): _dotted("status.phase"),
    ("", "secrets"): _dotted("type"),
    ("apps", "replicasets"): _dotted("status.replicas"),
}

_FIELD_TERM = re.compile(r"^(?P<field>[^=!]+?)\s*(?P<op>!=|==|=)(?P<value>.*)$", re.S)


def _split_fields(selector: str) -> list[str]:
    """Commas separate terms; ``\\,`` ``\\=`` ``\\!`` ``\\\\`` escape (fields.EscapeValue)."""
    terms: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in selector:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_matcher(rtype: ResourceType, selector: str | None) -> Matcher:
    """A predicate for a ``fieldSelector`` on ``rtype``; an unsupported field is a 400."""
    if not selector or not selector.strip():
        return lambda obj: True
    fields = {"metadata.name": _path("metadata", "name")}
    if rtype.namespaced:
        fields["metadata.namespace"] = _path("metadata", "namespace")
    fields.update(FIELDS.get(rtype.key, {}))
    tests: list[Matcher] = []
    for term in _split_fields(selector):
        m = _FIELD_TERM.match(term.replace("\\=", "\0e").replace("\\!", "\0x"))
        if m is None:
            raise KubeApiError(400, "BadRequest", f"invalid selector: '{selector}'; can't understand '{term}'")
        field = m["field"].strip()
        value = _unescape(m["value"].replace("\0e", "\\=").replace("\0x", "\\!"))
        getter = fields.get(field)
        if getter is None:
            raise KubeApiError(400, "BadRequest", f'field label not supported: {field}')
        if m["op"] == "!=":
            tests.append(lambda obj, g=getter, v=value: g(obj) != v)  # type: ignore[misc]
        else:
            tests.append(lambda obj, g=getter, v=value: g(obj) == v)  # type: ignore[misc]
    return lambda obj: all(test(obj) for test in tests)


# -- paging ------------------------------------------------------------------------------------------

def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta.get("name"))


def _decode(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("version")
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KubeApiError(400, "BadRequest", f"continue key is not valid: {exc}") from None


def _encode(rv: int, last_key: str) -> str:
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": last_key + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


class Page:
    """One page of a list: ``items``, the list's ``metadata`` (resourceVersion, continue,
    remainingItemCount)."""

    def __init__(self, items: list[Obj], metadata: Obj) -> None:
        self.items = items
        self.metadata = metadata


def paginate(items: Sequence[Obj], *, rv: int, limit: str, token: str, resource_version: str,
             filtered: bool) -> Page:
    """``items`` (sorted by key, selectors applied) cut at ``limit`` after the ``continue`` key."""
    list_rv = rv
    items = sorted(items, key=_key)  # etcd returns keys in byte order
    if token:
        if resource_version not in ("", None):
            raise KubeApiError(400, "BadRequest", "specifying resource version is not allowed when using continue")
        list_rv, start = _decode(token)
        items = [o for o in items if _key(o) >= start]
    try:
        size = int(limit) if limit else 0
    except ValueError:
        raise KubeApiError(400, "BadRequest", f'invalid value for "limit": {limit!r}') from None
    meta: Obj = {"resourceVersion": str(list_rv)}
    if size <= 0 or len(items) <= size:
        return Page(list(items), meta)
    page = list(items[:size])
    meta["continue"] = _encode(list_rv, _key(page[-1]))
    if not filtered:
        meta["remainingItemCount"] = len(items) - size
    return Page(page, meta)
