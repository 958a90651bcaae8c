"""Which servers the simulated RethinkDB cluster has, where each table's replicas live, and how
ready each table is: the one model that ``server_status``, ``table_config``, ``table_status``,
``current_issues``, reads, writes and ``wait()`` all read, so they always agree.

The healthy lab is what GuildNet deploys (``k8s/rethinkdb.yaml``): one server, every table with
one replica on it. A fault changes the cluster into another state a real cluster can be in:

* ``rethinkdb.critical_issue``: table A has a second voting replica on ``<name>_1``, and that server
  is unreachable: no write quorum, so only outdated reads work (``exec_primary.cc`` refuses
  up-to-date reads and writes without a majority) and the server reports a *critical*
  ``table_availability`` issue naming ``<name>_1``.
* ``rethinkdb.table_not_ready``: table A has a second voting replica on ``<name>_2``, connected but
  still backfilling: no write quorum, yet no issue at all, because a real server raises a
  ``table_availability`` issue only when a replica's server is unreachable (``issues/table.cc``).
* ``rethinkdb.replica_lagging``: table B has three voting replicas, the one on ``<name>_2``
  backfilling: writes work, ``all_replicas_ready`` is false, no issue (same reason).
* ``rethinkdb.replica_unreachable``: table B has three voting replicas and ``<name>_2`` is
  unreachable: writes work, and a *non-critical* ``table_availability`` issue names it.

Server connectivity is cluster-wide, so faults compose into one consistent state (with
``critical_issue`` and ``replica_lagging`` together, table B has one ready replica of three).
A disconnected server is missing from ``server_status`` and from the others' ``connected_to``
(``server_status.cc`` lists only servers some peer still sees), and is listed as
``disconnected`` in the ``table_status`` of every table with a replica on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "FAULT_CRITICAL_ISSUE",
    "FAULT_REPLICA_LAGGING",
    "FAULT_REPLICA_UNREACHABLE",
    "FAULT_TABLE_NOT_READY",
    "FINISHED",
    "OUTDATED_READS",
    "READS",
    "UNAVAILABLE",
    "WRITES",
    "TableView",
    "Topology",
]

FAULT_CRITICAL_ISSUE: Final = "rethinkdb.critical_issue"
FAULT_TABLE_NOT_READY: Final = "rethinkdb.table_not_ready"
FAULT_REPLICA_LAGGING: Final = "rethinkdb.replica_lagging"
FAULT_REPLICA_UNREACHABLE: Final = "rethinkdb.replica_unreachable"

# table_readiness_t, in order (clustering/administration/tables/table_readiness.hpp).
UNAVAILABLE, OUTDATED_READS, READS, WRITES, FINISHED = range(5)


@dataclass(frozen=True)
class TableView:
    """One table's replicas and readiness, as the server computes them for ``table_status``."""

    primary: str
    replicas: tuple[str, ...]       # voting replicas in config order, the primary first
    states: dict[str, str]          # server -> ready | backfilling | disconnected
    readiness: int
    raft_leader: str | None

    @property
    def disconnected(self) -> list[str]:
        return [s for s in self.replicas if self.states[s] == "disconnected"]

    @property
    def total_loss(self) -> bool:
        return all(state == "disconnected" for state in self.states.values())

    def replica_state(self, server: str) -> str:
        """The ``state`` a ``table_status`` replica entry shows (``table_status.cc``)."""
        state = self.states[server]
        if state == "ready" and server == self.primary and self.readiness < WRITES:
            return "waiting_for_quorum"  # the primary cannot reach a majority of voters
        return state


class Topology:
    """The cluster's shape under the active faults; computed afresh on every read."""

    def __init__(self, server_name: str, active: Callable[[str], bool],
                 table_a: tuple[str, str] | None, table_b: tuple[str, str] | None) -> None:
        self.server_name = server_name
        stem = server_name.rsplit("_", 1)[0] if "_" in server_name else server_name
        self.lost, self.second = f"{stem}_1", f"{stem}_2"
        self._extra: dict[tuple[str, str], list[str]] = {}
        self._backfilling: set[tuple[tuple[str, str], str]] = set()
        self.disconnected: set[str] = set()
        if active(FAULT_CRITICAL_ISSUE) and table_a:
            self._add(table_a, self.lost)
            self.disconnected.add(self.lost)
        if active(FAULT_TABLE_NOT_READY) and table_a:
            self._add(table_a, self.second, backfilling=True)
        lagging, unreachable = active(FAULT_REPLICA_LAGGING), active(FAULT_REPLICA_UNREACHABLE)
        if (lagging or unreachable) and table_b:
            self._add(table_b, self.lost)
            self._add(table_b, self.second, backfilling=lagging)
        if unreachable:
            self.disconnected.add(self.second)

    def _add(self, table: tuple[str, str], server: str, *, backfilling: bool = False) -> None:
        servers = self._extra.setdefault(table, [])
        if server not in servers:
            servers.append(server)
        if backfilling:
            self._backfilling.add((table, server))

    @property
    def servers(self) -> list[str]:
        """Every server some table config names, the one the client talks to first."""
        names = [self.server_name]
        for extra in self._extra.values():
            names += [s for s in extra if s not in names]
        return names

    @property
    def connected(self) -> list[str]:
        return [s for s in self.servers if s not in self.disconnected]

    def table(self, db: str, name: str) -> TableView:
        key = (db, name)
        replicas = (self.server_name, *self._extra.get(key, ()))
        states = {s: "disconnected" if s in self.disconnected
                  else "backfilling" if (key, s) in self._backfilling else "ready" for s in replicas}
        return TableView(self.server_name, replicas, states, _readiness(self.server_name, replicas, states),
                         _raft_leader(self.server_name, replicas, states))


def _readiness(primary: str, replicas: tuple[str, ...], states: dict[str, str]) -> int:
    ready = [s for s in replicas if states[s] == "ready"]
    if len(ready) == len(replicas):
        return FINISHED
    if not any(states[s] != "disconnected" for s in replicas):
        return UNAVAILABLE
    # Up-to-date reads and writes both need the primary in contact with a majority of voters.
    if states[primary] == "ready" and 2 * len(ready) > len(replicas):
        return WRITES
    return OUTDATED_READS


def _raft_leader(primary: str, replicas: tuple[str, ...], states: dict[str, str]) -> str | None:
    # Raft needs a majority of the table's servers connected (backfilling ones count).
    reachable = [s for s in replicas if states[s] != "disconnected"]
    return primary if 2 * len(reachable) > len(replicas) else None
