"""``contrastseg suggest``: the unpainted slices where more paint helps most (placeholder until issue 20)."""

from __future__ import annotations


def add_parser(sub) -> None:
    """No sub-command yet."""
