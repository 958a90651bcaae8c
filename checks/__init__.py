"""The built-in check plugins, one module per layer (installed as ``mgn_verify.checks``).

Each module is registered through an entry point in group ``mgn_verify``, exactly like a
third-party plugin, and can be blocked with ``-p no:<layer>``.
"""
