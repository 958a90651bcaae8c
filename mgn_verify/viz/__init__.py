"""``mgn viz``: a live terminal dashboard of every GuildNet cluster and its preflight.

``collect`` gathers a snapshot (Host App, clusters, nodes, workspaces), ``preflight`` re-runs the
GuildNet layers' checks in the background, ``screen`` (rich) and ``plain`` (text) draw them,
``app`` runs the dashboard or the one-shot snapshot. The command is ``mgn_verify.cli.viz_cmd``.
"""
