"""The check authors' kit: what a team needs to test its checks and to run mgn from pytest.

- ``pytest_plugin``: the hub registered through the ``pytest11`` entry point ``mgn_verify``; it
  loads the modules below and the lab fixtures (``mgn_verify.lab.pytest_plugin``) into every
  pytest run once mgn-verify is installed. Importing any of them starts nothing and imports no
  part of the engine: that happens when a fixture or ``--mgn-verify`` is used.
- ``fixtures``: ``mgn_kit`` (write check files and config, run mgn in-process or as a process,
  get the structured report back) and ``mgn_hooks`` (a recorder of every hook call).
- ``verify_items``: ``pytest --mgn-verify=SELECTION`` — mgn checks as pytest items.

The public names live in ``mgn_verify.testing``.
"""
