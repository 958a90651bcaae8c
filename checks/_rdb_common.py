"""What the ``rethinkdb`` layer's checks share: the per-run connection pool and which databases
and tables are GuildNet's.

The pool finds each cluster's server once (``clients.rethinkdb.discover``), opens one driver
connection on first use and keeps it for the run; a failure is cached too, so a broken cluster
costs one attempt, not one per check (thread-safe).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mgn_verify import Config
from mgn_verify._exceptions import ClientError, NotConfiguredError

if TYPE_CHECKING:
    from mgn_verify.clients.rethinkdb import RethinkAddress, RethinkClient

__all__ = ["AUTH", "LAYER", "REACHABLE", "RethinkPool", "guildnet_databases", "org_name"]

LAYER = "rethinkdb"
#: The requirement of the connection checks, and of every check that queries the server.
REACHABLE = "rethinkdb.reachable[{cluster}]"
AUTH = "rethinkdb.auth[{cluster}]"
#: The server's own diagnosis comes first: a critical issue (a replica's server gone) then is the one
#: root cause, and the server and table checks it explains are blocked instead of failing again.
ISSUES = "rethinkdb.issues[{cluster}]"


class RethinkPool:
    """Per cluster: its address (found once) and one authenticated connection (opened once)."""

    def __init__(self, config: Config, targets: Iterable[Any], *, timeout: float) -> None:
        self._config = config
        self.timeout = timeout
        self._targets = {t.id: t for t in targets}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._addresses: dict[str, RethinkAddress] = {}
        self._clients: dict[str, RethinkClient | ClientError] = {}

    def _cluster_lock(self, cluster: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(cluster, threading.Lock())

    def target(self, cluster: str) -> Any:
        target = self._targets.get(cluster)
        if target is None:
            raise NotConfiguredError(f"cluster {cluster!r} is not known", component=LAYER, target=cluster)
        return target

    def address(self, cluster: str) -> RethinkAddress:
        """Where the cluster's RethinkDB is (``rethinkdb.host``, its Service, or loopback)."""
        from mgn_verify.clients.rethinkdb import discover

        with self._cluster_lock(cluster):
            if cluster not in self._addresses:
                self._addresses[cluster] = discover(self.target(cluster), config=self._config, timeout=self.timeout)
            return self._addresses[cluster]

    def client(self, cluster: str) -> RethinkClient:
        """The cluster's authenticated connection; raises the (cached) ``ClientError`` otherwise."""
        from mgn_verify.clients.rethinkdb import connect

        address = self.address(cluster)
        with self._cluster_lock(cluster):
            if cluster not in self._clients:
                rethink = self.target(cluster).rethinkdb
                try:
                    self._clients[cluster] = connect(address, rethink.user, rethink.password, self.timeout)
                except ClientError as exc:
                    self._clients[cluster] = exc
            made = self._clients[cluster]
        if isinstance(made, ClientError):
            raise made
        return made

    def close(self) -> None:
        with self._lock:
            made, self._clients = list(self._clients.values()), {}
        for client in made:
            if not isinstance(client, ClientError):
                client.close()


def org_name(value: str) -> str:
    """GuildNet's spelling of a cluster or database id in a database name (guildnet-host-app.md
    §4.4): lowercased, every character outside ``[a-z0-9_-]`` replaced by ``_``, empty ``default``."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower()) or "default"


def guildnet_databases(config: Config, cluster: str, db_list: Iterable[str]) -> tuple[list[str], list[str]]:
    """The databases of ``db_list`` that ``rethinkdb.databases`` names (globs; ``{cluster}`` is the
    cluster id as GuildNet spells it), and the patterns as expanded."""
    patterns = [str(p).replace("{cluster}", org_name(cluster)) for p in config["rethinkdb.databases"]]
    chosen = [db for db in sorted(db_list) if db != "rethinkdb" and any(fnmatch.fnmatchcase(db, p) for p in patterns)]
    return chosen, patterns
