"""``python -m mgn_verify`` is ``mgn``."""

from mgn_verify._entry import main

main()
