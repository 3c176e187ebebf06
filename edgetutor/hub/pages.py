"""The dashboard's drill-down pages: one trainee's attempts, and one attempt's itemised result.

A coordinator goes overview -> site (a filter) -> trainee -> attempt. Names and ids come from the
address and from devices: each is escaped, and an unknown one is a 404 page, never an error trace.
"""

from __future__ import annotations

import json
from typing import Any

from ..scoring.outcome import outcome, plural
from .accounts import Account, Scope
from .dashboard import _e, _link, _meter, _pct, _when, page
from .db import HubDB
from .report import attempts

LOCALTIME_JS = """// EdgeTutor hub: show each <time datetime="..."> in the reader's local time.
document.querySelectorAll("time[datetime]").forEach(function (t) {
  var d = new Date(t.getAttribute("datetime"));
  if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString([], {dateStyle: "medium", timeStyle: "short"}); }
});
"""


def login_page(check: str, target: str, error: str | None) -> str:
    """The sign-in form. `check` is the form's CSRF token (also in a cookie the form must match)."""
    parts = ['<section id="sign-in"><h2>Sign in</h2>']
    if error:
        parts.append(f'<p class="warn" role="alert">{_e(error)}</p>')
    parts.append(
        '<form method="post" action="/login" class="filters">'
        f'<input type="hidden" name="csrf" value="{_e(check)}">'
        f'<input type="hidden" name="next" value="{_e(target)}">'
        '<label>Name<input name="name" autocomplete="username" required maxlength="64" autofocus></label>'
        '<label>Password<input name="password" type="password" autocomplete="current-password" required>'
        '</label><button type="submit">Sign in</button></form>'
        '<p class="muted">Accounts are made by the hub\'s administrator '
        "(<code>edgetutor hub user add</code>).</p></section>"
    )
    return page("Sign in", parts, "EdgeTutor hub: sign in")


def account_bar(account: Account, csrf: str) -> str:
    """Who is signed in, what they see, and a sign-out button (a POST form carrying the
    session's CSRF token: a link elsewhere cannot sign anybody out)."""
    return (
        f'<p id="account">Signed in as <b>{_e(account.name)}</b> ({_e(account.describe())}) · '
        '<form method="post" action="/logout" style="display:inline">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<button type="submit" style="background:none;border:1px solid #fff;color:#fff;'
        'border-radius:4px;padding:1px 8px;cursor:pointer">Sign out</button></form></p>'
    )


class NotFound(LookupError):
    """An address that names nothing on this hub (the message says what)."""


def trainee_page(db: HubDB, site: str, name: str, scope: Scope) -> str:
    """Every attempt of one trainee at one site, newest first, each linking to its result. A site
    out of `scope` is "not found", exactly like a site that does not exist."""
    items = [a for a in attempts(db, scope) if a.site == site and a.trainee == name]
    if not items:
        raise NotFound(f"no results from a trainee {name[:80]!r} at site {site[:80]!r}")
    rows = [
        '<section id="attempts"><h2>Attempts, newest first</h2><div class="scroll"><table>',
        "<tr><th>When</th><th>Case</th><th>Score</th><th>Result</th><th>Competencies</th></tr>",
    ]
    for a in reversed(items):
        rows.append(
            f"<tr><td>{_when(a.ended)}</td><td>{_link('/attempt/' + a.event_id, {}, _e(a.title))}</td>"
            f"<td class=n>{_pct(a.score)}</td><td>{outcome(a.passed)}</td><td>{_e(', '.join(a.competencies))}</td></tr>"
        )
    rows.append("</table></div></section>")
    passed = sum(a.passed for a in items)
    summary = (
        f"<p>{_link('/', {'site': site}, 'Site ' + _e(site))} · {plural(len(items), 'attempt')}, "
        f"{passed} passed · {plural(len({a.case_id for a in items}), 'case')}</p>"
    )
    return page(f"{name} ({site})", [summary, *rows])


def attempt_page(db: HubDB, event_id: str, scope: Scope) -> str:
    """One attempt's itemised result as the device scored it: outcome, domains, what was missed.
    A result from a site out of `scope` is "not found", exactly like an unknown id."""
    row = db.event_result(event_id[:100])
    if row is None or not scope.allows(row["site"]):
        raise NotFound(f"no result {event_id[:100]!r} on this hub")
    try:
        payload: dict[str, Any] = json.loads(row["body"])["payload"]
        score = payload["score"]
    except (ValueError, KeyError, TypeError):
        raise NotFound(f"result {event_id[:100]!r} carries no score") from None
    site, name = row["site"], row["trainee_name"] or "(unnamed trainee)"
    debrief = payload.get("debrief") or {}
    parts = [
        f"<p>{_link('/trainee', {'site': site, 'name': name}, _e(name))} at {_e(site)} · "
        f"{_when(payload.get('ended'))} · {plural(int(payload.get('turns') or 0), 'turn')}</p>",
        f'<section id="result"><h2>{outcome(bool(score.get("passed")))}: {_pct(score.get("total"))}'
        f" (pass mark {_pct(score.get('pass_mark'))})</h2>",
    ]
    for c in debrief.get("critical", []):
        parts.append(f'<p class="warn">Critical error: {_e(c.get("description"))}</p>')
    parts.append('<div class="scroll"><table><tr><th>Domain</th><th>Score</th><th></th></tr>')
    for domain, value in (score.get("domains") or {}).items():
        level = float(value) if isinstance(value, int | float) else None
        parts.append(f"<tr><td>{_e(domain)}</td><td class=n>{_pct(level)}</td><td>{_meter(level)}</td></tr>")
    parts.append("</table></div></section>")
    missed = debrief.get("missed", [])
    parts.append('<section id="missed"><h2>Not done</h2>')
    if missed:
        parts.append('<div class="scroll"><table><tr><th>Checklist item</th><th>Domain</th></tr>')
        for m in missed:
            parts.append(f"<tr><td>{_e(m.get('description'))}</td><td>{_e(m.get('domain'))}</td></tr>")
        parts.append("</table></div>")
    else:
        parts.append('<p class="muted">Every checklist item was done.</p>')
    parts.append("</section>")
    case = payload.get("case") or {}
    return page(f"{case.get('title') or row['case_title'] or 'Attempt'}: {name}", parts)
