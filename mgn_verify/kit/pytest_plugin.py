"""The pytest plugin of mgn-verify (``pytest11`` entry point ``mgn_verify``).

It only names its parts; pytest imports and registers each (``pytest_plugins``), so ``-p
no:mgn_verify`` turns all of them off. Without the install: ``pytest -p mgn_verify.kit.pytest_plugin``.
"""

from __future__ import annotations

pytest_plugins = [
    "mgn_verify.lab.pytest_plugin",    # mgn_lab, mgn_lab_session and their markers
    "mgn_verify.kit.fixtures",         # mgn_kit, mgn_hooks
    "mgn_verify.kit.verify_items",     # --mgn-verify, --mgn-config
]
