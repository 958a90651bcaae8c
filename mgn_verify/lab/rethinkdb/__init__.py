"""The RethinkDB server simulator (``RethinkDBSimulator``, the real driver's wire protocol) and
its parts: ``wire`` (handshake and framing), ``reql`` with ``terms`` and ``values`` (the query
evaluator), ``admin`` (table administration), ``system`` (the ``rethinkdb`` system tables) and
``topology`` (the one cluster model every fault changes)."""

from mgn_verify.lab.rethinkdb.simulator import RethinkDBSimulator

__all__ = ["RethinkDBSimulator"]
