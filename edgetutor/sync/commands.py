"""`edgetutor sync` and `edgetutor results ...`: thin wrappers; heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from ..scoring.outcome import outcome, percent
from .seal import EventSealer


@click.command("sync")
@click.option("--hub", "hub_url", metavar="URL", help="The coordinator hub's address (remembered).")
@click.option("--token", metavar="TOKEN", help="Enrollment token from the coordinator (first sync only).")
@click.option(
    "--batch-size", default=200, show_default=True, type=click.IntRange(1, 5000), help="Results per request."
)
@click.option("--no-pull", is_flag=True, help="Do not download newer packs from the hub.")
@click.option(
    "--new-key",
    is_flag=True,
    help="Replace this device's key first (needs --token from the coordinator's `hub rotate`).",
)
def sync_cmd(hub_url: str | None, token: str | None, batch_size: int, no_pull: bool, new_key: bool) -> None:
    """Send finished results to the coordinator hub and install newer packs it publishes.

    The first time, give the hub address and the enrollment token from your coordinator; both
    are remembered. Results are marked sent only once the hub acknowledges them.

    With --new-key (after the coordinator rotated this device's key, or when the key is lost),
    a new key carries on this device's results: nothing already signed is signed again.
    """
    from ..store import open_db
    from ..textsafe import one_line
    from .client import new_key as replace_key
    from .client import sync

    if new_key and not token:
        raise click.UsageError("--new-key needs --token TOKEN (from the coordinator's `hub rotate`)")
    with open_db(sealer=EventSealer()) as store:
        if new_key:
            assert token is not None
            old, new = replace_key(store, token)
            click.echo(f"New device key {new}" + (f" (carries on device {old})" if old else ""))
        report = sync(store, hub_url, token, batch_size=batch_size, pull=not no_pull)
    # What the hub sent (site names, pack ids, reasons) is printed without terminal escapes.
    if report.enrolled_now:
        click.echo(
            f"Enrolled with {report.hub}" + (f" (site {one_line(report.site)})" if report.site else "")
        )
    for line in report.packs:
        click.echo(one_line(line[:1].upper() + line[1:], 1000))
    for line in report.pack_errors:
        click.echo(f"Pack not installed: {one_line(line, 1000)}", err=True)
    click.echo(report.summary()[:1].upper() + report.summary()[1:])


@click.group("results")
def results() -> None:
    """Finished results on this device: list them, or export them to a USB stick."""


@results.command("list")
def results_list() -> None:
    """Show this device's results, which are still pending, the hub and the last sync."""
    from ..store import open_db
    from ..textsafe import one_line, printable

    with open_db(sealer=EventSealer()) as store:
        state = store.sync_state()
        rows = store.results()
        pending = store.pending_count()
    device = state.device_id or "(no key used yet)"
    where = f"enrolled at {state.hub_url}" if state.enrolled else "not enrolled"
    if state.enrolled and state.site:
        where += f" (site {state.site})"
    elif not state.enrolled and state.enroll_token:
        where += " (enrollment token kept for the next sync or export)"
    last = state.last_sync.astimezone().strftime("%Y-%m-%d %H:%M") if state.last_sync else "never"
    click.echo(printable(f"Device {device}: {where}"))
    click.echo(
        f"{pending} pending, {len(rows) - pending} sent; last sync: {last}; hub: {state.hub_url or 'none'}"
    )
    if state.last_error:
        click.echo(f"Last error: {one_line(state.last_error, 1000)}")
    for r in rows:
        mark = "sent   " if r.state == "sent" else "pending"
        verdict = outcome(r.passed)
        when = r.created.astimezone().strftime("%Y-%m-%d %H:%M")
        click.echo(
            printable(
                f"#{r.seq:<5} {mark} {when}  {r.trainee[:20]:<20} {r.case_id[:36]:<36} {percent(r.total):>4} {verdict}"
            )
        )


@results.command("export")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the bundle into (e.g. the USB stick).",
)
def results_export(out_dir: Path) -> None:
    """Write every result the hub has not acknowledged into one signed *.etres file.

    Give the file to the coordinator (`edgetutor hub import`). Exporting does not mark results
    sent: the next `edgetutor sync` (or the hub's acknowledgement) does.
    """
    from ..store import open_db
    from .bundle import export

    with open_db(sealer=EventSealer()) as store:
        done = export(store, out_dir)
    if done is None:
        click.echo("Nothing to export: no result is waiting for the hub.")
        return
    what = f"{done.events} result{'s' if done.events != 1 else ''}"
    if done.first is not None:
        what += f" (#{done.first}-#{done.last})"
    if done.enroll:
        what += " and this device's enrollment token"
    click.echo(f"Wrote {what} to {done.path}")
