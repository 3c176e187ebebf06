"""`edgetutor sync` and `edgetutor results ...`: thin wrappers; heavy imports stay inside the commands."""

from __future__ import annotations

import click


@click.command("sync")
def sync_cmd() -> None:
    """Send finished results to the coordinator hub."""
    raise click.UsageError("not available yet")


@click.group("results")
def results() -> None:
    """Finished results on this device."""
