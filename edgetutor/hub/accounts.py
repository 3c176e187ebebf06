"""Coordinator accounts: who may read the dashboard, and which sites each of them sees.

A hub with no account is the single-clinic setup: the dashboard answers only the hub machine
itself (or, with `--dashboard-from-anywhere`, a network the coordinator trusts) and shows every
site. Once one account exists (`edgetutor hub user add`), every dashboard page, export and report
needs a signed-in person, from any address, loopback included (behind a reverse proxy on the
same machine every client looks like loopback), and shows only that person's scope:

- a **national admin** sees every site;
- a **district coordinator** sees the sites given to their district (`edgetutor hub site SITE
  --district D`); a site given to no district is seen by national admins only;
- a **site supervisor** sees one site.

The scope is applied where the rows are read (`HubDB.scored_events(sites)` and friends), so a
page cannot show what its query never fetched; an address naming something out of scope is the
same 404 as one naming nothing, so it does not even tell that it exists.

Passwords are hashed with scrypt (memory-hard: 32 MiB per guess), with a random salt per
password. A session is a random token in an HttpOnly, SameSite=Strict cookie; the hub stores only
its SHA-256, so a copy of the database signs nobody in. Sessions end after `SESSION_HOURS`, after
`IDLE_MINUTES` without a request, at sign-out, and when the password changes or the account is
removed. Every page viewed, export, report, sign-in (and refused sign-in) and account change is
written to the audit log (`edgetutor hub audit`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from . import HubError
from .db import HubDB, later, now, token_hash

ROLES = {
    "national": "national admin",
    "district": "district coordinator",
    "site": "site supervisor",
}
SESSION_HOURS = 8.0  # a working day; then the person signs in again
IDLE_MINUTES = 30.0  # a session left alone this long ends
MIN_PASSWORD = 10
# scrypt cost: N=2^15, r=8 needs 128*N*r = 32 MiB and ~0.1 s per guess on the hub's CPU.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): the parameters travel with the hash, so a later, dearer
    setting still checks older passwords."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


# A name that has no account is checked against this, so a refusal takes as long either way.
_DECOY = hash_password(secrets.token_urlsafe(16))


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise HubError(f"the password is too short: at least {MIN_PASSWORD} characters", 400)
    if password.strip() != password:
        raise HubError("the password starts or ends with a space: type it without", 400)


@dataclass(frozen=True, slots=True)
class Scope:
    """The sites a reader may see: None is every site."""

    sites: frozenset[str] | None

    def allows(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def listed(self) -> list[str] | None:
        """The sites for a query (`HubDB.scored_events(sites)`), None for every site."""
        return None if self.sites is None else sorted(self.sites)


EVERYTHING = Scope(None)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    scope: str | None  # the district or the site; None for a national admin

    def describe(self) -> str:
        where = f", {self.scope}" if self.scope else ""
        return f"{ROLES.get(self.role, self.role)}{where}"


def scope_of(db: HubDB, account: Account) -> Scope:
    """What `account` may see now (a district's sites are read at each request, so a site
    moved to another district moves with it at once)."""
    if account.role == "national":
        return EVERYTHING
    if account.role == "district" and account.scope:
        return Scope(frozenset(db.sites_of(account.scope)))
    if account.role == "site" and account.scope:
        return Scope(frozenset([account.scope]))
    return Scope(frozenset())  # an account row edited by hand into nonsense sees nothing


def add_user(db: HubDB, name: str, role: str, scope: str | None, password: str) -> Account:
    """Create an account (raises HubError with a one-line reason)."""
    if not NAME.match(name):
        raise HubError(
            "an account name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
            400,
        )
    if role not in ROLES:
        raise HubError(f"unknown role {role!r} (one of {', '.join(ROLES)})", 400)
    if role == "national" and scope:
        raise HubError("a national admin sees every site: give no --scope", 400)
    if role != "national" and not (scope and scope.strip()):
        raise HubError(f"a {ROLES[role]} needs --scope (the {role} they see)", 400)
    check_new_password(password)
    hashed = hash_password(password)
    with db.write():
        if db.user(name) is not None:
            raise HubError(f"an account {name!r} already exists", 409)
        db.add_user(name, role, scope.strip() if scope else None, hashed)
        db.add_audit(None, None, "account added", f"{name}: {ROLES[role]}" + (f", {scope}" if scope else ""))
    return Account(name, role, scope)


def change_password(db: HubDB, name: str, password: str) -> None:
    """Set a new password; every session of the account ends."""
    check_new_password(password)
    hashed = hash_password(password)
    with db.write():
        if not db.set_password(name, hashed):
            raise HubError(f"no account {name!r}", 404)
        db.end_sessions(name)
        db.add_audit(None, None, "password changed", name)


def remove_user(db: HubDB, name: str) -> None:
    with db.write():
        if not db.remove_user(name):
            raise HubError(f"no account {name!r}", 404)
        db.add_audit(None, None, "account removed", name)


def _account(row: dict[str, object]) -> Account:
    return Account(
        str(row["name"]), str(row["role"]), row["scope"] if isinstance(row["scope"], str) else None
    )


def sign_in(db: HubDB, name: str, password: str, address: str | None) -> tuple[Account, str, str] | None:
    """(account, session token, CSRF token) if the password is right, else None. The token is
    given to the browser once; only its hash is kept."""
    row = db.user(name[:64]) if NAME.match(name) else None
    stored = str(row["password"]) if row else _DECOY
    ok = check_password(password, stored) and row is not None
    with db.write():
        if not ok or row is None:
            db.add_audit(name[:64] or None, address, "sign-in refused", "wrong name or password")
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        db.add_session(token_hash(token), str(row["name"]), csrf, later(SESSION_HOURS / 24), address)
        db.add_audit(str(row["name"]), address, "signed in", None)
    return _account(row), token, csrf


def _idle_cutoff() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=IDLE_MINUTES)).isoformat(timespec="milliseconds")


def session_account(db: HubDB, token: str) -> tuple[Account, str] | None:
    """The account a session token signs in, and the session's CSRF token; None when the token
    is unknown, expired, idle too long, or its account is gone."""
    if not token or len(token) > 100:
        return None
    hashed = token_hash(token)
    found = db.session(hashed)
    if found is None:
        return None
    if str(found["expires"]) < now() or str(found["seen"]) < _idle_cutoff():
        with db.write():
            db.end_session(hashed)
        return None
    row = db.user(str(found["user_name"]))
    if row is None:
        return None
    with db.write():
        db.touch_session(hashed)
    return _account(row), str(found["csrf"])


def sign_out(db: HubDB, token: str, account: Account, address: str | None) -> None:
    with db.write():
        db.end_session(token_hash(token))
        db.add_audit(account.name, address, "signed out", None)


def record(db: HubDB, account: Account | None, address: str | None, action: str, detail: str) -> None:
    """One line in the audit log: who (None: the hub machine, no accounts) did what."""
    with db.write():
        db.add_audit(account.name if account else None, address, action, detail[:500])


def prune_sessions(db: HubDB) -> int:
    with db.write():
        return db.prune_sessions(_idle_cutoff())
