"""The workspace a user asks for: ``mgn workspace create`` flags or the orchestrator's §7
``workspace:`` template, normalised and checked before anything is sent, and the body the Host
App's ``POST /api/cluster/{id}/workspaces`` expects."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mgn_verify._exceptions import UsageError

__all__ = ["WorkspacePort", "WorkspaceSpec", "env_pairs"]

#: The operator names the workspace's Service after it: an RFC 1035 label (what Kubernetes
#: requires of a Service name), else the Host App answers a bare 500 after the preflight.
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_TEMPLATE_KEYS = frozenset({"name", "image", "env", "ports", "args", "resources", "labels", "notes"})


@dataclass(frozen=True)
class WorkspacePort:
    container_port: int
    name: str | None = None
    protocol: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"containerPort": self.container_port}
        if self.name:
            out["name"] = self.name
        if self.protocol:
            out["protocol"] = self.protocol
        return out


@dataclass(frozen=True)
class WorkspaceSpec:
    """What to create. ``env``: ``(name, value)`` pairs (or ``"K=V"`` strings, or a mapping);
    ``ports``: :class:`WorkspacePort`, ints, or ``{containerPort, name, protocol}`` mappings;
    ``labels``: pairs or a mapping. Everything is normalised (and checked) on construction."""

    name: str
    image: str
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[WorkspacePort, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    resources: Mapping[str, Any] | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise UsageError("workspace name: a non-empty string is required")
        if not _DNS_LABEL.fullmatch(self.name):
            raise UsageError(f"workspace name {self.name!r}: not a DNS label (lowercase letters, digits and '-', "
                             "starting with a letter, ending with a letter or digit, at most 63 characters): "
                             "the operator names the workspace's Service after it")
        if not isinstance(self.image, str) or not self.image.strip():
            raise UsageError("workspace image: a non-empty string is required")
        object.__setattr__(self, "env", _pairs(self.env, "env"))
        object.__setattr__(self, "labels", _pairs(self.labels, "labels"))
        object.__setattr__(self, "ports", tuple(_port(p, f"ports[{i}]") for i, p in enumerate(self.ports)))
        args: Any = self.args  # whatever a caller passed: checked here
        if isinstance(args, str) or not all(isinstance(a, str | int | float) for a in args):
            raise UsageError("workspace args: a list of strings is expected")
        object.__setattr__(self, "args", tuple(str(a) for a in args))
        if self.resources is not None and not isinstance(self.resources, Mapping):
            raise UsageError("workspace resources: a mapping (requests, limits) is expected")
        if not isinstance(self.notes, str):
            raise UsageError("workspace notes: a string is expected")

    @classmethod
    def from_template(cls, mapping: Mapping[str, Any]) -> WorkspaceSpec:
        """From the §7 ``workspace:`` mapping (or a whole template document holding one)."""
        if not isinstance(mapping, Mapping):
            raise UsageError("workspace template: a mapping is expected")
        if set(mapping) == {"workspace"}:
            mapping = mapping["workspace"]
            if not isinstance(mapping, Mapping):
                raise UsageError("workspace template: 'workspace' must be a mapping")
        unknown = sorted(str(k) for k in mapping if k not in _TEMPLATE_KEYS)
        if unknown:
            raise UsageError(f"workspace template: unknown key workspace.{unknown[0]} "
                             f"(known: {', '.join(sorted(_TEMPLATE_KEYS))})")
        for key in ("name", "image"):
            if not isinstance(mapping.get(key), str) or not str(mapping.get(key)).strip():
                raise UsageError(f"workspace template: workspace.{key} must be a non-empty string")
        return cls(name=mapping["name"], image=mapping["image"], env=_template_env(mapping.get("env")),
                   ports=_template_list(mapping.get("ports"), "ports"),
                   labels=_template_mapping(mapping.get("labels"), "labels"),
                   args=_template_list(mapping.get("args"), "args"),
                   resources=_template_resources(mapping.get("resources")),
                   notes=_template_notes(mapping.get("notes")))

    def body(self) -> dict[str, Any]:
        """The ``POST /api/cluster/{id}/workspaces`` body as the Host App reads it: ``env``
        ``[{name, value}]``, ``ports`` ``[{containerPort, name?, protocol?}]``, ``labels`` a map
        (``notes`` is not read by the create route, so it is not sent)."""
        out: dict[str, Any] = {"name": self.name, "image": self.image,
                               "env": [{"name": k, "value": v} for k, v in self.env],
                               "ports": [p.body() for p in self.ports]}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.args:
            out["args"] = list(self.args)
        if self.resources:
            out["resources"] = _plain(self.resources)
        return out


def _pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        value = list(value.items())
    out: list[tuple[str, str]] = []
    for item in value or ():
        if isinstance(item, str):
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise UsageError(f"workspace {what}: {item!r} is not KEY=VALUE")
            out.append((key, val))
        elif isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str) and item[0]:
            out.append((item[0], _scalar(item[1], f"{what}.{item[0]}")))
        else:
            raise UsageError(f"workspace {what}: {item!r} is not a (name, value) pair")
    return tuple(out)


def _scalar(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise UsageError(f"workspace {what}: a string value is expected, got {type(value).__name__}")


def _port(value: Any, what: str) -> WorkspacePort:
    if isinstance(value, WorkspacePort):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in ("containerPort", "name", "protocol"))
        if unknown:
            raise UsageError(f"workspace template: unknown key workspace.{what}.{unknown[0]}")
        number, name, protocol = value.get("containerPort"), value.get("name"), value.get("protocol")
        if name is not None and not isinstance(name, str):
            raise UsageError(f"workspace template: workspace.{what}.name must be a string")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            raise UsageError(f"workspace template: workspace.{what}.protocol must be TCP, UDP or SCTP")
        return WorkspacePort(_port_number(number, f"workspace.{what}.containerPort"), name, protocol)
    return WorkspacePort(_port_number(value, f"workspace.{what}"))


def _port_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() \
            or not 1 <= int(value) <= 65535:
        raise UsageError(f"workspace template: {what} must be a port number (1-65535), got {value!r}")
    return int(value)


def _template_env(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return _pairs(value, "env")
    if not isinstance(value, list):
        raise UsageError("workspace template: workspace.env must be a list of {name, value}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item.get("name") \
                or set(item) - {"name", "value"}:
            raise UsageError(f"workspace template: workspace.env[{i}] must be {{name, value}}")
        out.append((str(item["name"]), _scalar(item.get("value"), f"env[{i}].value")))
    return tuple(out)


def _template_list(value: Any, key: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"workspace template: workspace.{key} must be a list")
    return tuple(value)


def _template_mapping(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UsageError(f"workspace template: workspace.{key} must be a mapping")
    return tuple((str(k), _scalar(v, f"{key}.{k}")) for k, v in value.items())


def _template_resources(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"requests", "limits"} \
            or not all(isinstance(v, Mapping) for v in value.values()):
        raise UsageError("workspace template: workspace.resources must be {requests: {...}, limits: {...}}")
    return value


def _template_notes(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UsageError("workspace template: workspace.notes must be a string")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- operations -------------------------------------------------------------------------------

def env_pairs(items: Iterable[str], what: str) -> tuple[tuple[str, str], ...]:
    """``K=V`` command-line values as pairs (``what`` names the option in errors)."""
    return _pairs(list(items), what)
