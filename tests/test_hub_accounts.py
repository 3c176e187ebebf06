"""Coordinator accounts on a real hub over HTTP: sign-in, scopes, sessions, CSRF, the audit log.

The hub is the real `edgetutor hub serve` (tests/hub_helpers.Hub) on SQLite and on a real
PostgreSQL server; results come from real signed device chains. A "browser" here is urllib with
a cookie jar that does not follow redirects, so every 303 is seen.
"""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgetutor.hub.db import HubDB
from edgetutor.hub.ingest import enroll, ingest
from edgetutor.sync import protocol
from tests.conftest import ENGINES, hub_database
from tests.hub_helpers import Device, Hub, issue_token, payload, rows
from tests.postgres import PostgresServer


def cli(*args: str, stdin: str | None = None) -> Any:
    from click.testing import CliRunner

    from edgetutor.cli import make_cli

    return CliRunner().invoke(make_cli(), list(args), input=stdin)


API = protocol.API
PASSWORDS = {"nat": "national pass 2026", "north": "north district pass", "alpha": "alpha site password"}
# site -> (district or None, the trainee whose results come from there)
SITES = {
    "Alpha Clinic": ("North", "Amina Northalpha"),
    "Beta Clinic": ("North", "Baraka Northbeta"),
    "Gamma Clinic": ("South", "Grace Southgamma"),
    "Delta Clinic": (None, "Dawit Nodistrict"),
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Browser:
    """One person's browser: cookies kept, redirects shown rather than followed."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def send(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode("utf-8", "replace")

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self.send("GET", path)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def sign_in(self, name: str, password: str, next_path: str = "/") -> tuple[int, dict[str, str], str]:
        status, _, page = self.get("/login?" + urllib.parse.urlencode({"next": next_path}))
        assert status == 200, page
        check = re.search(r'name="csrf" value="([^"]+)"', page)
        assert check, page
        return self.send(
            "POST", "/login", {"csrf": check.group(1), "name": name, "password": password, "next": next_path}
        )

    def sign_out_token(self, page: str) -> str:
        found = re.search(r'action="/logout".*?name="csrf" value="([^"]+)"', page)
        assert found, page
        return found.group(1)


@dataclass
class Cohort:
    db: Path | str
    events: dict[str, str]  # site -> one of its event ids
    devices: dict[str, str]  # site -> its device id


def build_cohort(db: Path | str) -> Cohort:
    """Four sites with one device and one trainee each, three accounts, two districts."""
    events, devices = {}, {}
    with HubDB(db) as hub_db:
        for site, (district, trainee) in SITES.items():
            device = Device()
            body = device.enroll_body(issue_token(db, site))
            enroll(hub_db, **{k: body[k] for k in ("token", "device_id", "public_key", "label", "proof")})
            chain = [
                device.event(payload(trainee=trainee)),
                device.event(payload(trainee=trainee, total=0.4)),
            ]
            assert ingest(hub_db, device.id, chain)["accepted"] == 2
            events[site], devices[site] = chain[0]["event_id"], device.id
            if district:
                with hub_db.write():
                    hub_db.set_district(site, district)
    target = str(db)
    for name, role, scope in (
        ("nat", "national", None),
        ("north", "district", "North"),
        ("alpha", "site", "Alpha Clinic"),
    ):
        args = ["hub", "user", "add", name, "--db", target, "--role", role, "--password-stdin"]
        result = cli(*args, *(["--scope", scope] if scope else []), stdin=PASSWORDS[name] + "\n")
        assert result.exit_code == 0, result.output
    return Cohort(db, events, devices)


@pytest.fixture
def cohort(tmp_path: Path) -> Cohort:
    return build_cohort(tmp_path / "hub.db")


@pytest.fixture
def hub(cohort: Cohort) -> Any:
    running = Hub(cohort.db)
    try:
        yield running
    finally:
        running.stop()


def _links(page: str) -> list[str]:
    return [urllib.parse.unquote(h).replace("&amp;", "&") for h in re.findall(r'href="(/[^"]*)"', page)]


def forbidden_for(cohort: Cohort, visible: set[str]) -> list[str]:
    """Everything about the sites out of scope that no page may show."""
    out = []
    for site, (_, trainee) in SITES.items():
        if site not in visible:
            out += [site, trainee, cohort.events[site], cohort.devices[site]]
    return out


def crafted(cohort: Cohort) -> list[str]:
    """Addresses a curious coordinator could type to reach every site's data."""
    paths = ["/", "/export.csv", "/robots.txt", "/static/localtime.js"]
    for site, (_, trainee) in SITES.items():
        q = urllib.parse.urlencode
        paths += [
            "/?" + q({"site": site}),
            "/trainee?" + q({"site": site, "name": trainee}),
            "/attempt/" + cohort.events[site],
            "/export.csv?" + q({"site": site}),
        ]
    paths += [f"{API}/report?by={axis}" for axis in ("trainee", "case", "competency", "site", "device")]
    return paths


def visit_everything(browser: Browser, cohort: Cohort) -> dict[str, tuple[int, str]]:
    """Every crafted address, then every link any page shows, followed to the end."""
    seen: dict[str, tuple[int, str]] = {}
    todo = crafted(cohort)
    while todo and len(seen) < 300:
        path = todo.pop()
        if path in seen or path.startswith(("/login", "/logout")):
            continue
        status, _, body = browser.get(path)
        seen[path] = (status, body)
        if status == 200 and "<html" in body:
            todo += _links(body)
    return seen


@pytest.mark.parametrize("engine", ENGINES)
def test_a_district_coordinator_cannot_read_another_district_by_any_url(
    engine: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    from edgetutor.hub.db import HubDB as _HubDB
    from edgetutor.hub.server import make_app

    cohort = build_cohort(hub_database(engine, tmp_path, postgres))
    hub = Hub(cohort.db)
    try:
        north = Browser(hub.url)
        status, headers, _ = north.sign_in("north", PASSWORDS["north"])
        assert status == 303 and headers["location"] == "/"
        seen = visit_everything(north, cohort)
        visible = {"Alpha Clinic", "Beta Clinic"}
        for path, (status, body) in seen.items():
            assert status in (200, 404), (path, status, body[:300])
            # A 404 may repeat what was asked ("no result 'x'"): only what it adds counts.
            split = urllib.parse.urlsplit(path)
            asked = [split.path.rsplit("/", 1)[-1], *(v for _, v in urllib.parse.parse_qsl(split.query))]
            told = body
            for value in sorted(asked, key=len, reverse=True):
                told = told.replace(value, "") if value else told
            for secret in forbidden_for(cohort, visible):
                assert secret not in told, f"{path} shows {secret!r}"
        # What the district holds is there (the scope is not simply "nothing").
        overview = seen["/"][1]
        assert "Amina Northalpha" in overview and "Baraka Northbeta" in overview
        assert seen["/attempt/" + cohort.events["Alpha Clinic"]][0] == 200
        # Another district's trainee or result is the same 404 as one that does not exist.
        other = "/trainee?" + urllib.parse.urlencode({"site": "Gamma Clinic", "name": "Grace Southgamma"})
        unknown = "/trainee?" + urllib.parse.urlencode({"site": "Gamma Clinic", "name": "Nobody Atall"})
        assert seen[other][0] == 404
        assert north.get(unknown)[:1] == (404,)
        assert seen[other][1].replace("Grace Southgamma", "Nobody Atall") == north.get(unknown)[2]
        assert seen["/attempt/" + cohort.events["Gamma Clinic"]][0] == 404
        # Every address the hub answers with data was tried (a new page must be added here).
        with _HubDB(cohort.db) as db:
            routes = {getattr(r, "path", "") for r in make_app(db).routes}
        tried = {re.sub(r"\?.*", "", p) for p in seen} | {"/login", "/logout"}
        tried |= {"/attempt/{event_id}"} if any(p.startswith("/attempt/") for p in seen) else set()
        device_api = {r for r in routes if r.startswith(API) and not r.endswith("/report")}
        assert routes - device_api <= tried, routes - device_api - tried
    finally:
        hub.stop()


def test_each_role_sees_its_own_scope(hub: Hub, cohort: Cohort) -> None:
    expected = {
        "nat": set(SITES),
        "north": {"Alpha Clinic", "Beta Clinic"},
        "alpha": {"Alpha Clinic"},
    }
    for name, visible in expected.items():
        browser = Browser(hub.url)
        assert browser.sign_in(name, PASSWORDS[name])[0] == 303
        status, _, page = browser.get("/")
        assert status == 200
        for site, (_, trainee) in SITES.items():
            assert (trainee in page) == (site in visible), (name, trainee)
        status, _, csv_text = browser.get("/export.csv")
        assert status == 200
        assert {line.split(",")[1] for line in csv_text.splitlines()[1:]} == visible
        assert f"Signed in as <b>{name}</b>" in page
    # Delta Clinic is in no district: only the national admin sees it.


def test_signing_in_needs_the_right_password_and_stores_only_hashes(hub: Hub, cohort: Cohort) -> None:
    browser = Browser(hub.url)
    # Not signed in: a page sends to the sign-in form, the API answers 401.
    status, headers, _ = browser.get("/trainee?site=Alpha+Clinic&name=x")
    assert (
        status == 303 and headers["location"] == "/login?next=%2Ftrainee%3Fsite%3DAlpha%2BClinic%26name%3Dx"
    )
    status, _, body = browser.get(f"{API}/report?by=site")
    assert status == 401 and "sign in" in body
    status, _, page = browser.sign_in("north", "not the password")
    assert status == 401 and "Wrong name or password." in page
    status, _, page = browser.sign_in("nobody", "whatever it is")
    assert status == 401 and "Wrong name or password." in page
    assert rows(cohort.db, "SELECT count(*) FROM sessions") == [(0,)]
    status, headers, _ = browser.sign_in("north", PASSWORDS["north"], "/export.csv")
    assert status == 303 and headers["location"] == "/export.csv"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = browser.cookie("edgetutor_session")
    assert token
    stored = rows(cohort.db, "SELECT hash FROM sessions")
    assert stored == [(__import__("hashlib").sha256(token.encode()).hexdigest(),)]
    passwords = [r[0] for r in rows(cohort.db, "SELECT password FROM users")]
    assert all(p.startswith("scrypt$32768$8$1$") for p in passwords)
    assert not any(secret in p for p in passwords for secret in PASSWORDS.values())


def test_sign_in_goes_back_only_to_this_hub(hub: Hub) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        status, headers, _ = Browser(hub.url).sign_in("nat", PASSWORDS["nat"], target)
        assert status == 303 and headers["location"] == "/", target


def test_forms_without_their_token_are_refused_and_change_nothing(hub: Hub, cohort: Cohort) -> None:
    # A sign-in posted from elsewhere has no matching cookie: refused before the password is read.
    forged = Browser(hub.url)
    status, _, page = forged.send(
        "POST", "/login", {"csrf": "guess", "name": "north", "password": PASSWORDS["north"]}
    )
    assert status == 400 and "The form had expired" in page
    assert rows(cohort.db, "SELECT count(*) FROM sessions") == [(0,)]
    browser = Browser(hub.url)
    assert browser.sign_in("north", PASSWORDS["north"])[0] == 303
    page = browser.get("/")[2]
    # Sign-out without the page's token (a link or a form on another site): refused, still signed in.
    status, _, body = browser.send("POST", "/logout", {"csrf": "wrong"})
    assert status == 403 and "sign-out refused" in body
    assert browser.get("/")[0] == 200
    status, headers, _ = browser.send("POST", "/logout", {"csrf": browser.sign_out_token(page)})
    assert status == 303 and headers["location"] == "/login"
    assert browser.get("/")[0] == 303
    assert rows(cohort.db, "SELECT count(*) FROM sessions") == [(0,)]


def test_sessions_end_when_idle_when_old_and_when_the_password_changes(hub: Hub, cohort: Cohort) -> None:
    def signed_in(password: str = PASSWORDS["north"]) -> Browser:
        browser = Browser(hub.url)
        assert browser.sign_in("north", password)[0] == 303
        assert browser.get("/")[0] == 200
        return browser

    def edit(sql: str) -> None:
        assert isinstance(cohort.db, Path)
        with sqlite3.connect(cohort.db) as conn:
            conn.execute(sql)

    idle = signed_in()
    edit("UPDATE sessions SET seen = '2000-01-01T00:00:00.000+00:00'")
    assert idle.get("/")[0] == 303
    assert rows(cohort.db, "SELECT count(*) FROM sessions") == [(0,)]  # and forgotten

    old = signed_in()
    edit("UPDATE sessions SET expires = '2000-01-01T00:00:00.000+00:00'")
    assert old.get("/")[0] == 303

    changed = signed_in()
    result = cli(
        "hub",
        "user",
        "passwd",
        "north",
        "--db",
        str(cohort.db),
        "--password-stdin",
        stdin="a brand new password\n",
    )
    assert result.exit_code == 0, result.output
    assert changed.get("/")[0] == 303
    assert Browser(hub.url).sign_in("north", PASSWORDS["north"])[0] == 401
    assert Browser(hub.url).sign_in("north", "a brand new password")[0] == 303

    removed = signed_in("a brand new password")
    assert cli("hub", "user", "remove", "north", "--db", str(cohort.db)).exit_code == 0
    assert removed.get("/")[0] == 303


def test_guessing_passwords_is_slowed_to_one_try_in_five_seconds(hub: Hub) -> None:
    browser = Browser(hub.url)
    statuses = [browser.sign_in("north", f"guess number {i}")[0] for i in range(10)]
    assert statuses == [401] * 10
    # The 11th try comes within 5 s of the first on any machine this runs on (each ~0.1-0.5 s);
    # one more is allowed for a slow one, whose bucket may have refilled a single try.
    for _ in range(2):
        status, headers, body = browser.sign_in("north", PASSWORDS["north"])
        if status == 429:
            break
    assert status == 429 and int(headers["retry-after"]) >= 1 and "too many" in body.lower()


def test_the_audit_log_says_who_viewed_and_exported_what(hub: Hub, cohort: Cohort) -> None:
    browser = Browser(hub.url)
    Browser(hub.url).sign_in("north", "a wrong password")
    browser.sign_in("north", PASSWORDS["north"])
    browser.get("/trainee?" + urllib.parse.urlencode({"site": "Alpha Clinic", "name": "Amina Northalpha"}))
    browser.get("/export.csv?site=Beta+Clinic")
    browser.get(f"{API}/report?by=trainee")
    result = cli("hub", "audit", "--db", str(cohort.db), "--limit", "20")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("north from 127.0.0.1 report: /api/v1/report?by=trainee" in ln for ln in lines), lines
    assert any("north from 127.0.0.1 exported: /export.csv?site=Beta+Clinic" in ln for ln in lines), lines
    assert any(
        "north from 127.0.0.1 viewed: /trainee?site=Alpha+Clinic&name=Amina+Northalpha" in ln for ln in lines
    )
    assert any("north from 127.0.0.1 sign-in refused" in ln for ln in lines), lines
    assert any("north from 127.0.0.1 signed in" in ln for ln in lines), lines
    assert any("(command line) account added: north: district coordinator, North" in ln for ln in lines), (
        lines
    )
    assert all(p not in result.output for p in PASSWORDS.values())  # a password is never logged
    only = cli("hub", "audit", "--db", str(cohort.db), "--user", "nat").output
    assert "north" not in only


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--role", "site", "--scope", "Alpha Clinic"],
            "short\n",
            "the password is too short: at least 10 characters",
        ),
        (
            ["--role", "national", "--scope", "North"],
            "long enough pass\n",
            "a national admin sees every site: give no --scope",
        ),
        (
            ["--role", "district"],
            "long enough pass\n",
            "a district coordinator needs --scope (the district they see)",
        ),
        (
            ["--role", "site", "--scope", "Alpha Clinic"],
            " padded password \n",
            "the password starts or ends with a space",
        ),
    ],
)
def test_a_bad_account_is_refused_in_one_line_and_nothing_is_written(
    cohort: Cohort, args: list[str], stdin: str, message: str
) -> None:
    before = rows(cohort.db, "SELECT count(*) FROM users"), rows(cohort.db, "SELECT count(*) FROM audit")
    result = cli(
        "hub", "user", "add", "newcomer", "--db", str(cohort.db), "--password-stdin", *args, stdin=stdin
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}") and result.output.count("\n") == 1, result.output
    assert (
        rows(cohort.db, "SELECT count(*) FROM users"),
        rows(cohort.db, "SELECT count(*) FROM audit"),
    ) == before


def test_a_second_account_of_the_same_name_is_refused(cohort: Cohort) -> None:
    result = cli(
        "hub",
        "user",
        "add",
        "north",
        "--db",
        str(cohort.db),
        "--role",
        "national",
        "--password-stdin",
        stdin="long enough pass\n",
    )
    assert result.exit_code == 1 and result.output == "Error: an account 'north' already exists\n"
    assert rows(cohort.db, "SELECT role FROM users WHERE name = 'north'") == [("district",)]


def test_passwords_are_checked_with_their_own_parameters() -> None:
    from edgetutor.hub.accounts import check_password, hash_password

    first, second = hash_password("same password!"), hash_password("same password!")
    assert first != second  # a salt each
    assert check_password("same password!", first) and check_password("same password!", second)
    assert not check_password("same password?", first)
    assert not check_password("same password!", "plain text") and not check_password("x", "")
