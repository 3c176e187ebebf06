"""`edgetutor bench`: thin wrapper; heavy imports stay inside the command."""

from __future__ import annotations

import click


@click.command("bench")
def bench() -> None:
    """Measure each available model on this machine."""
    raise click.UsageError("not available yet")
