"""``python -m mgn_verify.lab …`` runs the ``lab`` command group (what ``up --detach`` spawns)."""

from __future__ import annotations

from mgn_verify.lab.cli import lab

if __name__ == "__main__":
    lab(prog_name="mgn lab")
