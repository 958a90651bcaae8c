"""The GuildNet Host App simulator (``HostAppSimulator``) and its parts: ``model`` (request
context, wire helpers, kubeconfig parsing) and ``cluster`` (the per-cluster API)."""

from mgn_verify.lab.hostapp.simulator import HostAppSimulator, RequestRecord

__all__ = ["HostAppSimulator", "RequestRecord"]
