"""`edgetutor hub ...`: the coordinator's commands; heavy imports stay inside the commands."""

from __future__ import annotations

import click


@click.group("hub")
def hub() -> None:
    """Coordinator hub: enroll devices, serve, import USB bundles, report."""
