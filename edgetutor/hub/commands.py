"""`edgetutor hub ...`: the coordinator's commands; heavy imports stay inside the commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .db import HubDB

DB_HELP = (
    "The hub database: a SQLite file (created if missing) or a postgresql://user@host:port/name URL"
    " (the database must exist; the hub creates its tables)."
)
DB_OPTION = click.option("--db", "db_target", required=True, help=DB_HELP)
# Commands that only read or change an existing hub must not create an empty one from a typo.
EXISTING_DB_OPTION = click.option("--db", "db_target", required=True, help=DB_HELP + " It must exist.")


def open_hub(target: str, existing: bool = False) -> HubDB:
    """The hub database `target` names; with `existing`, a SQLite path that is not a file yet is
    refused rather than created empty (a PostgreSQL database is never created by the hub)."""
    from .db import HubDB
    from .engines import is_url

    if existing and not is_url(target) and not Path(target).is_file():
        raise click.BadParameter(
            f"no hub database at {target} (the file does not exist)", param_hint="'--db'"
        )
    return HubDB(target)


@click.group("hub")
def hub() -> None:
    """Coordinator hub: enroll devices, serve, import USB bundles, report."""


@hub.command("serve")
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
@click.option(
    "--dashboard-from-anywhere",
    is_flag=True,
    help="Serve the dashboard and reports to other machines too (they have no login).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (for PostgreSQL: one per core is a good start).",
)
@click.option(
    "--per-address",
    default="50/s:200",
    show_default=True,
    help="Requests each client address may make (rate/s:burst); more get 429.",
)
@click.option(
    "--per-device",
    default="10/s:20",
    show_default=True,
    help="Result batches each device may send (rate/s:burst); more get 429.",
)
def hub_serve(
    db_target: str,
    host: str,
    port: int,
    log_level: str,
    dashboard_from_anywhere: bool,
    workers: int,
    per_address: str,
    per_device: str,
) -> None:
    """Serve the sync API and the coordinators' dashboard (/) until stopped."""
    from .limits import Rate
    from .server import serve

    try:
        address_rate, device_rate = Rate.parse(per_address), Rate.parse(per_device)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    serve(db_target, host, port, log_level, dashboard_from_anywhere, address_rate, device_rate, workers)


VALID_DAYS_OPTION = click.option(
    "--valid-days",
    default=7.0,
    show_default=True,
    type=float,
    help="Days the token can be used before it expires (at most 90).",
)


@hub.command("enroll")
@DB_OPTION
@click.option("--site", required=True, help="The site (clinic, school) the device will belong to.")
@click.option("--label", default=None, help="A name for the device shown in listings.")
@VALID_DAYS_OPTION
def hub_enroll(db_target: str, site: str, label: str | None, valid_days: float) -> None:
    """Issue a single-use enrollment token for one device at SITE (only its hash is stored)."""
    from .ingest import new_token

    with open_hub(db_target) as db:
        token = new_token(db, site, label, valid_days)
    click.echo(token)
    click.echo(
        f"Single-use enrollment token for site {site!r}, valid {valid_days:g} days: give it to the device once.",
        err=True,
    )


@hub.command("rotate")
@click.argument("device_id")
@EXISTING_DB_OPTION
@VALID_DAYS_OPTION
def hub_rotate(device_id: str, db_target: str, valid_days: float) -> None:
    """Retire DEVICE_ID's key and print a token for its new key (same site and label)."""
    from .ingest import rotate

    with open_hub(db_target, existing=True) as db:
        token = rotate(db, device_id, valid_days)
    click.echo(token)
    click.echo(
        f"Device {device_id} can send nothing more with its old key. On the device, run"
        " `edgetutor sync --new-key --token TOKEN` with this single-use token"
        f" (valid {valid_days:g} days): its results carry on under the new key.",
        err=True,
    )


@hub.command("devices")
@EXISTING_DB_OPTION
def hub_devices(db_target: str) -> None:
    """List enrolled devices: site, label, last sync, acknowledged sequence, anomalies."""
    from ..textsafe import one_line

    with open_hub(db_target, existing=True) as db:
        devices = db.devices()
        counts = db.anomaly_counts()
    if not devices:
        click.echo("No devices enrolled.")
        return
    header = ("DEVICE", "SITE", "LABEL", "ENROLLED", "LAST SYNC", "ACKED", "REVOKED", "ANOMALIES")
    # Labels come from devices: shown on one line, without terminal escapes.
    rows = [
        (
            one_line(d.id, 64),
            one_line(d.site, 100),
            one_line(d.label or "", 100),
            d.enrolled[:19],
            (d.last_sync or "never")[:19],
            str(d.acked_seq),
            (d.revoked or "no")[:19],
            str(counts.get(d.id, 0)),
        )
        for d in devices
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@hub.command("revoke")
@click.argument("device_id")
@EXISTING_DB_OPTION
def hub_revoke(device_id: str, db_target: str) -> None:
    """Refuse any further results from DEVICE_ID (its stored results stay)."""
    from . import HubError

    with open_hub(db_target, existing=True) as db:
        if db.device(device_id) is None:
            raise HubError(f"no device {device_id} is enrolled")
        with db.write():
            changed = db.revoke(device_id)
    click.echo(f"Revoked device {device_id}" if changed else f"Device {device_id} was already revoked")


@hub.command("import")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@EXISTING_DB_OPTION
def hub_import(bundle: Path, db_target: str) -> None:
    """Import a USB results bundle (.etres); importing it again changes nothing."""
    from ..textsafe import one_line
    from .ingest import import_bundle

    with open_hub(db_target, existing=True) as db:
        result = import_bundle(db, bundle)
    reply = result.reply
    # Ids and reasons can quote the bundle: printed on one line, without terminal escapes.
    device = one_line(result.device_id, 64)
    if result.enrolled:
        click.echo(f"Enrolled device {device} at site {one_line(repr(result.site))} from the bundle's token")
    click.echo(
        one_line(
            f"{bundle.name}: device {device}: {reply['accepted']} new, {reply['replayed']} already present,"
            f" {len(reply['rejected'])} refused; acknowledged up to seq {reply['acked_seq']}",
            1000,
        )
    )
    for item in reply["rejected"]:
        click.echo(
            one_line(f"Refused seq {item['seq']} ({item['event_id']}): {item['reason']}", 500), err=True
        )
    if reply["rejected"]:
        sys.exit(1)


@hub.command("publish")
@click.argument("pack", type=click.Path(path_type=Path, dir_okay=False))
@DB_OPTION
def hub_publish(pack: Path, db_target: str) -> None:
    """Add a signed case pack to the catalogue devices download from (they verify it)."""
    from .catalogue import publish

    with open_hub(db_target) as db:
        row = publish(db, pack)
    click.echo(
        f"Published {row['pack_id']} v{row['version']} ({row['size']} bytes, sha256 {row['digest'][:12]})"
    )


@hub.command("report")
@EXISTING_DB_OPTION
@click.option(
    "--by",
    type=click.Choice(["trainee", "case", "competency", "site", "device"]),
    default="trainee",
    show_default=True,
    help="What each row is.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write to a file.")
def hub_report(db_target: str, by: str, fmt: str, out: Path | None) -> None:
    """Progress across devices: per trainee, case, competency, site or device."""
    from .accounts import EVERYTHING
    from .report import build_report, format_report

    with open_hub(db_target, existing=True) as db:
        # The hub's own database: whoever can open it sees every site.
        text = format_report(build_report(db, by, EVERYTHING), fmt)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        from ..fsutil import atomic_write_bytes

        atomic_write_bytes(out, text.encode("utf-8"))
        click.echo(f"Wrote {out}", err=True)


# -- coordinator accounts (accounts.py) ----------------------------------------------------------
def _password(from_stdin: bool) -> str:
    """The new password: one line from stdin (scripts), or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to type a password at: pass it on stdin with --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


PASSWORD_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin (else: prompt)."
)


@hub.group("user")
def hub_user() -> None:
    """Coordinator accounts: who may read the dashboard, and which sites they see."""


@hub_user.command("add")
@click.argument("name")
@EXISTING_DB_OPTION
@click.option(
    "--role",
    type=click.Choice(["national", "district", "site"]),
    required=True,
    help="national admin (every site), district coordinator or site supervisor.",
)
@click.option("--scope", default=None, help="The district (district role) or the site (site role).")
@PASSWORD_STDIN
def hub_user_add(name: str, db_target: str, role: str, scope: str | None, password_stdin: bool) -> None:
    """Create an account NAME. Once a hub has one account, its dashboard needs a sign-in."""
    from .accounts import add_user

    with open_hub(db_target, existing=True) as db:
        first = db.count_users() == 0
        account = add_user(db, name, role, scope, _password(password_stdin))
    click.echo(f"Account {account.name}: {account.describe()}")
    if first:
        click.echo(
            "This is the hub's first account: from now on the dashboard asks everyone to sign in.",
            err=True,
        )


@hub_user.command("list")
@EXISTING_DB_OPTION
def hub_user_list(db_target: str) -> None:
    """List accounts: name, role, scope, created."""
    from .accounts import ROLES

    with open_hub(db_target, existing=True) as db:
        rows = db.users()
    if not rows:
        click.echo("No accounts: the dashboard answers the hub machine only.")
        return
    for r in rows:
        click.echo(
            f"{r['name']}  {ROLES.get(r['role'], r['role'])}  {r['scope'] or '(every site)'}  {r['created'][:10]}"
        )


@hub_user.command("passwd")
@click.argument("name")
@EXISTING_DB_OPTION
@PASSWORD_STDIN
def hub_user_passwd(name: str, db_target: str, password_stdin: bool) -> None:
    """Set NAME's password; NAME is signed out everywhere."""
    from .accounts import change_password

    with open_hub(db_target, existing=True) as db:
        change_password(db, name, _password(password_stdin))
    click.echo(f"Password of {name} changed; every session of {name} has ended.")


@hub_user.command("remove")
@click.argument("name")
@EXISTING_DB_OPTION
def hub_user_remove(name: str, db_target: str) -> None:
    """Remove NAME's account (signed out at once; the audit log keeps what they did)."""
    from .accounts import remove_user

    with open_hub(db_target, existing=True) as db:
        remove_user(db, name)
    click.echo(f"Account {name} removed.")


@hub.command("site")
@click.argument("site")
@EXISTING_DB_OPTION
@click.option("--district", required=True, help="The district the site belongs to.")
def hub_site(site: str, db_target: str, district: str) -> None:
    """Put SITE in DISTRICT: that district's coordinators see its results from now on."""
    from . import HubError

    district = district.strip()
    if not district or not site.strip():
        raise HubError("a site and a district need a name")
    with open_hub(db_target, existing=True) as db:
        with db.write():
            db.set_district(site, district)
            db.add_audit(None, None, "site assigned", f"{site} -> {district}")
    click.echo(f"Site {site!r} is in district {district!r}.")


@hub.command("sites")
@EXISTING_DB_OPTION
def hub_sites(db_target: str) -> None:
    """List every site the hub knows, with its district (or none: national admins only)."""
    from ..textsafe import one_line

    with open_hub(db_target, existing=True) as db:
        districts = db.districts()
        sites = db.known_sites()
    for site in sites:
        click.echo(f"{one_line(site, 100)}  {one_line(districts.get(site, '(no district)'), 100)}")


@hub.command("audit")
@EXISTING_DB_OPTION
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--user", "user", default=None, help="Only this account's records.")
def hub_audit(db_target: str, limit: int, user: str | None) -> None:
    """Who viewed, exported or signed in, newest first; account and site changes too."""
    from ..textsafe import one_line

    with open_hub(db_target, existing=True) as db:
        rows = db.audit(limit, user)
    for r in rows:
        who = r["user_name"] or ("(hub machine)" if r["address"] else "(command line)")
        where = f" from {r['address']}" if r["address"] else ""
        detail = f": {r['detail']}" if r["detail"] else ""
        click.echo(one_line(f"{r['at'][:19]}Z  {who}{where}  {r['action']}{detail}", 400))
