"""Preflight gates: the named, reviewable check lists a lifecycle command runs before it acts.

A check joins a gate through its own metadata (``@check(gates=["workspace.create"])``) or
through config::

    gates:
      workspace.create: {add: [acme.quota], remove: [kubernetes.operator]}
      nightly.backup: {add: ["rethinkdb.*"]}      # a new gate: it has `add`

Every member carries where it came from ("check metadata (plugin P, file F)" or "config FILE
key gates.NAME.add"), so ``mgn gate show`` answers "why does this command run that check?".
Per-cluster checks are members by base id: their instances exist only for the clusters the
run targets (none for a cluster without a local kubeconfig).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError, UsageError
from ._match import IdMatcher
from ._model import CheckSpec
from ._text import did_you_mean
from ._waivers import setting_where

if TYPE_CHECKING:
    from .config import Config

__all__ = ["BUILTIN_GATES", "Gate", "GateBook", "GateMember", "explain_gates", "gate_layers", "gate_run_selection",
           "gate_selections"]


@dataclass(frozen=True, slots=True)
class _Builtin:
    description: str
    #: Layers its members live in (what the session loads, and asks the Host App for clusters for).
    layers: tuple[str, ...]
    #: The command acts through the local kubeconfig: a missing one fails instead of skipping.
    local: bool = False


BUILTIN_GATES: dict[str, _Builtin] = {
    "install": _Builtin("before `mgn install`: the node's system and network prerequisites, the "
                        "cluster's API, and the Host App", ("system", "network", "kubernetes", "guildnet"), True),
    "cluster.bootstrap": _Builtin("before `mgn cluster bootstrap`: the Host App, the kubeconfig to register "
                                  "and its API, RethinkDB", ("kubernetes", "rethinkdb", "guildnet"), True),
    "cluster.apply": _Builtin("before `mgn cluster apply`: the Host App, the kubeconfig to attach and its API",
                              ("kubernetes", "guildnet"), True),
    "cluster.delete": _Builtin("before `mgn cluster delete`: the Host App and the cluster's record",
                               ("guildnet",)),
    "workspace.create": _Builtin("before `mgn workspace create`: the Host App, the cluster registered and "
                                 "reachable, the API ready, a Ready node, the CRDs, the operator",
                                 ("kubernetes", "guildnet")),
    "workspace.delete": _Builtin("before `mgn workspace delete`: the Host App and the cluster's status",
                                 ("guildnet",)),
    "federation.deploy": _Builtin("before `mgn federation deploy`, per cluster: as workspace.create",
                                  ("kubernetes", "guildnet")),
}


def gate_layers(name: str) -> list[str]:
    """The layers to load for gate ``name`` (all of them for a gate config or a plugin defines)."""
    builtin = BUILTIN_GATES.get(name)
    return list(builtin.layers) if builtin else ["all"]


def gate_run_selection(name: str) -> list[str]:
    """The run's selection: the gate's layers when the command needs the local kubeconfig (a
    missing one then fails), else ``all`` (a cluster known only to the Host App is fine)."""
    builtin = BUILTIN_GATES.get(name)
    return list(builtin.layers) if builtin and builtin.local else ["all"]


def gate_selections(name: str) -> tuple[list[str], list[str]]:
    """(layers to load, the run's selection) for ``mgn verify --gate NAME``: as the command."""
    return gate_layers(name), gate_run_selection(name)


def explain_gates(book: GateBook, spec: CheckSpec) -> list[str]:
    """``mgn verify explain``'s lines: the gates a check belongs to and why, and whether a
    failure of it may be overridden."""
    gates = book.gates_of(spec.id)
    lines = [f"  gates:       {', '.join(name for name, _ in gates) or '(none)'}"]
    lines += [f"    {name}: {via}" for name, via in gates]
    lines.append(f"  waivable:    {_waivability(spec)}")
    return lines


#: The built-in connection checks: without them the operation itself could only fail.
_CONNECTION_CHECKS = frozenset({"kubernetes.config", "kubernetes.api.reachable", "guildnet.hostapp.reachable"})


def _waivability(spec: CheckSpec) -> str:
    if spec.waivable:
        return "yes"
    if spec.base_id in _CONNECTION_CHECKS:
        return ("no (--ignore-preflight-errors and waivers cannot override a failure: the operation could "
                "only fail)")
    return ("no (declared not waivable by its check: --ignore-preflight-errors, waivers and config gates.NAME.remove "
            "cannot override it)")


@dataclass(frozen=True, slots=True)
class GateMember:
    """One check instance of a gate and why it is there."""

    id: str
    base_id: str
    via: str


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    description: str
    #: "built-in", "plugin P" or "config FILE".
    origin: str
    members: tuple[GateMember, ...]
    #: Members config took out (``gates.NAME.remove``), with that provenance.
    removed: tuple[GateMember, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "origin": self.origin,
                "checks": [{"id": m.id, "base_id": m.base_id, "via": m.via} for m in self.members],
                "removed": [{"id": m.id, "via": m.via} for m in self.removed]}


class GateBook:
    """Every gate of a loaded session: the built-in ones, those the checks' metadata name, and
    those config defines; membership resolved against the loaded checks (``specs``, in order)."""

    def __init__(self, specs: Iterable[CheckSpec], config: Config | None, warn: Callable[[str], None]) -> None:
        self._specs = list(specs)
        self._matcher = IdMatcher(self._specs)
        self._warn = warn
        self._file = _where(config)
        self._entries = _parse_entries(config["gates"] if config is not None and "gates" in config else {},
                                       self._file.removeprefix("config "))
        self._origins: dict[str, str] = {name: "built-in" for name in BUILTIN_GATES}
        for spec in self._specs:
            for name in spec.gates:
                if name not in self._origins:  # a plugin's own gate, unless it is a typo of a built-in one
                    self._origins[name] = f"plugin {spec.plugin}"
                    hint = did_you_mean(name, BUILTIN_GATES)
                    if hint:
                        warn(f"check {spec.id} joins gate {name!r}, which is not built in{hint}")
        known = list(self._origins)  # built-in and plugin gates: a config gate close to one is a typo
        for name, entry in self._entries.items():
            if name in self._origins:
                continue
            if entry["add"]:
                self._origins[name] = self._file
                hint = did_you_mean(name, known)
                if hint:
                    warn(f"{self._file}: gates.{name} defines a new gate{hint}")
            else:
                warn(f"{self._file}: gates.{name}: unknown gate{did_you_mean(name, self._origins)}; "
                     "the entry is ignored (give it 'add' to define a new gate)")
        self._warn_unmatched()
        self._cache: dict[str, Gate] = {}
        self._index: dict[str, list[tuple[str, str]]] | None = None

    def names(self) -> list[str]:
        """Built-in gates first (in their documented order), then the others by name."""
        return [*BUILTIN_GATES, *sorted(n for n in self._origins if n not in BUILTIN_GATES)]

    def check_name(self, name: str) -> None:
        if name not in self._origins:
            raise UsageError(f"unknown gate {name!r}{did_you_mean(name, self._origins)}; "
                             f"known gates: {', '.join(self.names())}")

    def gate(self, name: str) -> Gate:
        """Gate ``name`` with its members; an unknown name is a usage error (with a suggestion)."""
        self.check_name(name)
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def gates_of(self, check_id: str) -> list[tuple[str, str]]:
        """(gate, via) for every gate ``check_id`` belongs to."""
        if self._index is None:
            self._index = {}
            for name in self.names():
                for member in self.gate(name).members:
                    self._index.setdefault(member.id, []).append((name, member.via))
        return list(self._index.get(check_id, []))

    def would_include(self, name: str, base_id: str, gates: Iterable[str], waivable: bool) -> bool:
        """Whether a check that is not loaded (``base_id``, joining ``gates`` by its metadata)
        would be a member of gate ``name``: to name what a run leaves out."""
        entry = self._entries.get(name, {"add": [], "remove": []})

        def hit(pattern: str) -> bool:
            return fnmatch.fnmatchcase(base_id, pattern)

        removed = waivable and any(hit(p) for p in entry["remove"])
        return (name in gates or any(hit(p) for p in entry["add"])) and not removed

    def _resolve(self, name: str) -> Gate:
        members: dict[str, GateMember] = {}
        for spec in self._specs:
            if name in spec.gates:
                members[spec.id] = GateMember(spec.id, spec.base_id, _metadata_via(spec))
        entry = self._entries.get(name, {"add": [], "remove": []})
        for pattern in entry["add"]:
            for spec in self._matcher.select(pattern):
                members.setdefault(spec.id, GateMember(spec.id, spec.base_id,
                                                       f"{self._file} key gates.{name}.add"))
        removed = []
        key = f"{self._file} key gates.{name}.remove"
        for pattern in entry["remove"]:
            for spec in self._matcher.select(pattern):
                if spec.id not in members:
                    continue
                if not spec.waivable:  # "no override can skip it": config removal is an override too
                    self._warn(f"{key}: cannot remove {spec.id} from {name}: it is declared not waivable "
                               "(it stays in the gate)")
                    continue
                del members[spec.id]
                removed.append(GateMember(spec.id, spec.base_id, key))
        builtin = BUILTIN_GATES.get(name)
        origin = self._origins[name]
        description = builtin.description if builtin else f"defined by {origin}"
        return Gate(name, description, origin, tuple(members.values()), tuple(removed))

    def _warn_unmatched(self) -> None:
        """A config pattern that matches no check is probably a typo, unless its layer has no
        checks in this run at all (a cluster without a local kubeconfig has no kubernetes ones)."""
        layers = {spec.layer for spec in self._specs}
        for name, entry in self._entries.items():
            for verb in ("add", "remove"):
                for pattern in entry[verb]:
                    if not self._matcher.select(pattern) and pattern.split(".", 1)[0] in layers:
                        self._warn(f"{self._file}: gates.{name}.{verb} {pattern!r} matches no check"
                                   f"{self._matcher.suggest(pattern)}")


def _where(config: Config | None) -> str:
    """Where ``gates`` was set: the config file, or the command line (``--set gates=...``)."""
    return "config" if config is None else setting_where(config, "gates")


def _metadata_via(spec: CheckSpec) -> str:
    path = spec.source.rsplit(":", 1)[0] if spec.source else "?"
    return f"check metadata (plugin {spec.plugin or '?'}, file {path})"


def _parse_entries(raw: Any, source: str) -> dict[str, dict[str, list[str]]]:
    """``gates`` from config, validated: ``{NAME: {add: [...], remove: [...]}}`` (a single
    string stands for a list of one)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping of gate names, got {type(raw).__name__}", source=source, key="gates")
    entries: dict[str, dict[str, list[str]]] = {}
    for name, entry in raw.items():
        key = f"gates.{name}"
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise ConfigError(f"expected a mapping with 'add' and/or 'remove', got {type(entry).__name__}",
                              source=source, key=key)
        unknown = sorted(set(map(str, entry)) - {"add", "remove"})
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}{did_you_mean(unknown[0], ['add', 'remove'])} "
                              "(known: add, remove)", source=source, key=key)
        parsed: dict[str, list[str]] = {}
        for verb in ("add", "remove"):
            value = entry.get(verb) or []
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
                raise ConfigError("expected a list of check ids or globs", source=source, key=f"{key}.{verb}")
            parsed[verb] = [i.strip() for i in items]
        entries[str(name)] = parsed
    return entries
