"""PATCH bodies and field ownership, as kube-apiserver applies them.

``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json`` (RFC 6902),
``application/strategic-merge-patch+json`` (a merge patch whose lists of named objects, such as
containers, merge by ``name``) and ``application/apply-patch+yaml``: server-side apply with
``managedFields``. Ownership is tracked per leaf field (lists are atomic, a simplification of
the real list-map keys): an apply that changes a field another manager owns is a 409 Conflict
naming the manager and the field, unless ``force=true`` takes the field over; fields a manager
applied before and omits now are removed when nobody else owns them. Create, update and the
other patches record ``Update`` ownership for the fields they set (manager: ``fieldManager`` or
the User-Agent up to its first ``/``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mgn_verify.lab.kube import resources as kr
from mgn_verify.lab.kube.errors import KubeApiError
from mgn_verify.lab.kube.resources import Obj

__all__ = ["PATCH_TYPES", "apply", "json_patch", "merge_patch", "record_update", "strategic_merge_patch"]

Path = tuple[str, ...]
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", APPLY)
_MISSING = object()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces."""
    return _merge_objects(target, patch, merge_patch)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """As :func:`merge_patch`, except that lists of named items (containers, ports, env) merge
    item by item on ``name``."""
    if isinstance(patch, list) and isinstance(target, list) and _named(patch) and _named(target):
        merged = {item["name"]: item for item in copy.deepcopy(target)}
        for item in patch:
            merged[item["name"]] = strategic_merge_patch(merged.get(item["name"]), item)
        return list(merged.values())
    return _merge_objects(target, patch, strategic_merge_patch)


def _merge_objects(target: Any, patch: Any, merge: Callable[[Any, Any], Any]) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KubeApiError(422, "Invalid", f'JSON pointer "{path}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 ``add``/``remove``/``replace``/``test``; a missing path is a 422 as in the server."""
    if not isinstance(ops, list):
        raise KubeApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind, path = str(op.get("op")), str(op.get("path"))
        try:
            parent, key = _container(doc, _pointer(path))
            if kind == "test":
                current = parent[int(key)] if isinstance(parent, list) else parent[key]
                if current != op.get("value"):
                    raise KubeApiError(422, "Invalid", f"testing value {path} failed: test failed")
            elif kind == "remove":
                del parent[int(key) if isinstance(parent, list) else key]
            elif kind in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if key == "-" else int(key)
                    parent.insert(index, op.get("value")) if kind == "add" else parent.__setitem__(index, op["value"])
                else:
                    if kind == "replace" and key not in parent:
                        raise KeyError(key)
                    parent[key] = copy.deepcopy(op.get("value"))
            else:
                raise KubeApiError(400, "BadRequest", f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError):
            missing = f'{kind} operation does not apply: doc is missing path: "{path}"'
            raise KubeApiError(422, "Invalid", missing) from None
    return doc


# -- field ownership ------------------------------------------------------------------------------


def leaves(obj: Obj) -> dict[Path, Any]:
    """The fields a manager can own: everything but apiVersion/kind/status and the metadata the
    server sets; maps are walked, lists and scalars are leaves."""
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            meta = value if isinstance(value, dict) else {}
            for sub in ("labels", "annotations"):
                for name, text in (meta.get(sub) or {}).items():
                    out[("metadata", sub, name)] = text
            for sub in ("ownerReferences", "finalizers"):
                if sub in meta:
                    out[("metadata", sub)] = meta[sub]
            continue
        _walk(value, (key,), out)
    return out


def _walk(value: Any, path: Path, out: dict[Path, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _walk(sub, (*path, str(key)), out)
    else:
        out[path] = value


def _encode(paths: set[Path]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def _decode(fields: Any, prefix: Path = ()) -> set[Path]:
    if not isinstance(fields, dict) or not fields:
        return {prefix} if prefix else set()
    out: set[Path] = set()
    for key, sub in fields.items():
        if key.startswith("f:"):
            out |= _decode(sub, (*prefix, key[2:]))
    return out


Owners = dict[tuple[str, str], tuple[str, set[Path]]]  # (manager, operation) -> (apiVersion, fields)


def _owners(obj: Obj | None) -> Owners:
    owners: Owners = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        key = (str(entry.get("manager", "")), str(entry.get("operation", "Update")))
        owners[key] = (str(entry.get("apiVersion", "")), _decode(entry.get("fieldsV1")))
    return owners


def _store(obj: Obj, owners: Owners, stamp: dict[tuple[str, str], str]) -> None:
    old_times = {(e.get("manager"), e.get("operation")): e.get("time")
                 for e in obj["metadata"].get("managedFields") or []}
    entries = []
    for (manager, operation), (gv, fields) in owners.items():
        if fields:
            entries.append({"manager": manager, "operation": operation, "apiVersion": gv,
                            "time": stamp.get((manager, operation)) or old_times.get((manager, operation))
                            or kr.isotime(), "fieldsType": "FieldsV1", "fieldsV1": _encode(fields)})
    obj["metadata"]["managedFields"] = entries


def _matches(live: Any, wanted: Any) -> bool:
    """The applied value is what the object has, the server's defaults inside it aside (a
    container list matches when each applied container is part of the live one)."""
    if isinstance(wanted, dict) and isinstance(live, dict):
        return all(k in live and _matches(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(live, list):
        return len(wanted) == len(live) and all(_matches(lv, w) for lv, w in zip(live, wanted, strict=True))
    return bool(live == wanted)


def _overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def record_update(old: Obj | None, new: Obj, manager: str, api_version: str) -> None:
    """An ``Update`` by ``manager`` (create, PUT, non-apply PATCH): it owns what it changed."""
    before, after = leaves(old or {}), leaves(new)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    owners = _owners(old)
    for key, (gv, fields) in list(owners.items()):
        owners[key] = (gv, {f for f in fields if f in after and f not in changed})
    _, mine = owners.get((manager, "Update"), (api_version, set()))
    owners[(manager, "Update")] = (api_version, mine | changed)
    _store(new, owners, {(manager, "Update"): kr.isotime()} if changed else {})


def _conflict(conflicts: list[tuple[str, str, Path]]) -> KubeApiError:
    def field(path: Path) -> str:
        return "".join(f".{p}" for p in path)

    by_manager: dict[tuple[str, str], list[str]] = {}
    for manager, gv, path in conflicts:
        by_manager.setdefault((manager, gv), []).append(field(path))
    n = len(conflicts)
    if n == 1:
        (manager, gv, path), = conflicts
        text = f'Apply failed with 1 conflict: conflict with "{manager}" using {gv}: {field(path)}'
    else:
        text = f"Apply failed with {n} conflicts: " + "\n".join(
            f'conflicts with "{m}" using {gv}:\n' + "\n".join(f"- {f}" for f in fields)
            for (m, gv), fields in by_manager.items())
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {gv}', "field": field(p)}
              for m, gv, p in conflicts]
    return KubeApiError(409, "Conflict", text, {"causes": causes})


def _set(obj: Obj, path: Path, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def _remove(obj: Obj, path: Path) -> None:
    trail = [obj]
    for part in path[:-1]:
        nxt = trail[-1].get(part)
        if not isinstance(nxt, dict):
            return
        trail.append(nxt)
    trail[-1].pop(path[-1], None)
    for depth in range(len(trail) - 1, 0, -1):  # drop maps the removal emptied
        if not trail[depth]:
            trail[depth - 1].pop(path[depth - 1], None)


def apply(current: Obj | None, config: Obj, manager: str, *, force: bool) -> Obj:
    """Server-side apply of ``config`` by ``manager`` onto ``current`` (None: a create)."""
    wanted = leaves(config)
    gv = str(config.get("apiVersion", ""))
    owners = _owners(current)
    have = leaves(current or {})
    conflicts = [(m, ogv, p) for (m, op), (ogv, fields) in owners.items() if m != manager
                 for p in fields for want in wanted
                 if _overlaps(p, want) and want in have and not _matches(have[want], wanted[want])]
    if conflicts and not force:
        raise _conflict(sorted(set(conflicts)))
    new: Obj = copy.deepcopy(current) if current is not None else {
        k: copy.deepcopy(v) for k, v in config.items() if k != "metadata"}
    new.setdefault("metadata", {})
    for key in ("name", "namespace", "generateName"):
        if key in (config.get("metadata") or {}):
            new["metadata"].setdefault(key, config["metadata"][key])
    taken = {p for _, _, p in conflicts}
    for owner, (ogv, fields) in list(owners.items()):
        if owner[0] != manager:
            owners[owner] = (ogv, {f for f in fields if f not in taken})
    others = set().union(*(f for (m, _), (_, f) in owners.items() if m != manager)) if owners else set()
    _, before = owners.get((manager, "Apply"), (gv, set()))
    for path in before - set(wanted):
        if not any(_overlaps(path, o) for o in others):
            _remove(new, path)
    for path, value in wanted.items():
        if not _matches(have.get(path, _MISSING), value):
            _set(new, path, value)
    owners[(manager, "Apply")] = (gv, set(wanted))
    _store(new, owners, {(manager, "Apply"): kr.isotime()})
    return new
