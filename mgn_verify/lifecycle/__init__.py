"""The lifecycle commands' machinery: act on GuildNet only after a preflight gate passed.

- :mod:`.clusters`   clusters through the Host App: find, cluster template, plan/apply, wait usable
- :mod:`.context`    one command's configuration, loaded once (config file, ``--set``)
- :mod:`.exits`      the lifecycle commands' exit codes
- :mod:`.federation` ``federation deploy``: the federation file and the deployment schedule
- :mod:`.files`      the files a command reads (templates, kubeconfigs), errors as one line
- :mod:`.install`    ``mgn install``: GuildNet onto a cluster, then registered with the Host App
- :mod:`.kubeapply`  create Kubernetes objects idempotently and wait for them to be ready
- :mod:`.manifests`  what ``mgn install`` puts on a cluster (Kubernetes objects)
- :mod:`.output`     data printed as a table, JSON or YAML (``-o``)
- :mod:`.preflight`  run a named gate for a target cluster, decide, audit overrides
- :mod:`.targets`    which cluster a CLUSTER argument names (Host App id, gate id)
- :mod:`.workspace_spec` the workspace asked for (flags or the §7 template) and its request body
- :mod:`.workspaces` workspaces through the Host App: create, wait, view, test, delete

The commands themselves live in :mod:`mgn_verify.cli` (``cluster_cmd``, ``workspace_cmd``,
``install_cmd``, ``federation_cmd``, ``gate_cmd``); nothing here is imported by ``mgn verify``.
"""
