"""The essential ``core`` plugin: run settings, shared connection settings, the ``config`` fixture.

The connection settings (Host App API, kubeconfig, RethinkDB, Tailscale, Headscale) live here
rather than in one layer because the layers, the lab and the lifecycle commands share them.
"""

from __future__ import annotations

from .config import SettingsRegistry
from .hookspecs import hookimpl


@hookimpl
def mgn_add_settings(settings: SettingsRegistry) -> None:
    add = settings.add
    add("verify.timeout", 10.0, gt=0, help="seconds per check attempt unless the check sets its own")
    add("verify.concurrency", 32, min=1, max=4096, help="checks running at once (sync ones on a thread pool)")
    add("verify.checks_dirs", [], help="directories whose check_*.py files are loaded as plugins")
    add("verify.waivers", [], help="list of {id, reason, expires: YYYY-MM-DD}: proceed despite a failure")
    add("verify.ignore_preflight_errors", [], help="check ids or globs to waive, or 'all' (kubeadm style)")
    add("verify.strict", False, help="exit 4 when the only findings are warnings")
    add("verify.run_deadline", 0.0, min=0, help="seconds the whole run may take before it is stopped "
        "(0: derived from the checks' timeouts, retries and concurrency); a check holding the interpreter "
        "past it gets the process killed")
    add("verify.isolate", False, help="run each sync check in a child process, killed at its timeout (--isolate)")
    add("api.base_url", "https://127.0.0.1:8090", env="MGN_API_URL", help="GuildNet Host App URL")
    add("api.token", "", secret=True, env="MGN_API_TOKEN", help="bearer token for the Host App")
    add("api.timeout", 30.0, gt=0, help="seconds per Host App request")
    add("api.ca_bundle", None, kind="str", help="CA bundle that signs the Host App certificate")
    add("api.discover_clusters", True, help="also verify the clusters the Host App lists (when it answers)")
    add("defaults.cluster", "", env="MGN_DEFAULT_CLUSTER", help="cluster id used when none is given")
    add("clusters", [], help="clusters to verify: ids, or mappings {id, kubeconfig, context, rethinkdb: "
        "{host, port, user, password, service, namespace}}; empty: defaults.cluster with the "
        "kubernetes.* and rethinkdb.* settings")
    add("verify.clusters", [], help="verify only these cluster ids (--cluster ID)")
    add("verify.gate_targets", [], help="(internal) a gated command's target clusters: one neither configured "
        "nor discovered is verified through the Host App only")
    add("kubernetes.kubeconfig", None, kind="str",
        help="kubeconfig of the GuildNet cluster (None: $KUBECONFIG, ~/.guildnet/kubeconfig, ~/.kube/config)")
    add("kubernetes.context", None, kind="str", help="kubeconfig context (default: current-context)")
    add("rethinkdb.host", "", help="RethinkDB driver host (empty: the cluster's Service rethinkdb.service, "
        "else 127.0.0.1)")
    add("rethinkdb.service", "rethinkdb", help="Kubernetes Service that exposes RethinkDB (GuildNet's default)")
    add("rethinkdb.namespace", "default", help="namespace of that Service (the Host App's RETHINKDB_NAMESPACE)")
    add("rethinkdb.port", 28015, min=1, max=65535, help="RethinkDB driver port")
    add("rethinkdb.user", "admin", help="RethinkDB user")
    add("rethinkdb.password", "", secret=True, help="RethinkDB password")
    add("tailscale.socket", "/var/run/tailscale/tailscaled.sock", help="tailscaled LocalAPI socket")
    add("headscale.url", "", help="Headscale URL (empty: no Headscale checks)")
    add("headscale.api_key", "", secret=True, help="Headscale API key")
    add("history.enabled", True, help="record every mgn verify run in the history database (--no-history: "
        "not this one)")
    add("history.path", "~/.metaguildnet/history.db", help="SQLite database of past runs (mgn verify history, diff)")
    add("history.keep", 500, min=1, max=1_000_000, help="runs kept in the history database; older ones are pruned")
    add("watch.flap_changes", 3, min=2, help="status changes within watch.flap_window that mark a check flapping")
    add("watch.flap_window", 600.0, gt=0, help="seconds over which --watch counts a check's status changes")
    add("serve.listen", "127.0.0.1:9797", help="HOST:PORT mgn verify serve listens on (loopback unless asked)")
    add("serve.interval", 60.0, gt=0, help="seconds between the runs of mgn verify serve")
    add("viz.refresh", 5.0, gt=0, help="seconds between mgn viz refreshes")
    add("audit.path", "~/.metaguildnet/audit.jsonl",
        help="append-only JSONL log of every preflight override (--ignore-preflight-errors, --skip-verify)")
    add("gates", {}, help="preflight gate membership on top of the checks' metadata: "
        "{GATE: {add: [ids or globs], remove: [ids or globs]}}; a new name with 'add' defines a gate")
    # mgn install: what it applies (guildnet-host-app.md §3.3, §4.1) and how long it waits.
    # = lifecycle.manifests.PLACEHOLDER_OPERATOR_IMAGE, spelled out: `mgn verify` never imports lifecycle.
    add("install.operator_image", "ghcr.io/your/module/hostapp:latest",
        help="image of the workspace-operator Deployment (a ':local' tag is never pulled)")
    add("install.namespace", "guildnet-system", help="namespace of the workspace operator")
    add("install.rethinkdb_namespace", "default", help="namespace of the RethinkDB Service and StatefulSet")
    add("install.rethinkdb_image", "rethinkdb:2.4", help="image of the RethinkDB StatefulSet")
    add("install.wait_timeout", 300.0, gt=0, help="seconds mgn install waits for what it applied to be ready")
