"""``python -m mgn_verify`` is ``mgn``."""

from mgn_verify.cli import main

main()
