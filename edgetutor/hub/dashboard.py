"""The coordinators' dashboard: server-rendered HTML pages, no external files.

The overview (`render`) narrows by site, case, competency and dates (a GET form, so every view
has an address to share), links each site to its trainees and each trainee to their attempts
(`pages.py`), and downloads what it shows as CSV. Everything shown that came from a device
(trainee names, case titles, labels, anomaly reasons) passes through `_e` (html.escape) before it
is placed in a page; pages are served with a Content-Security-Policy that allows one script, the
hub's own `/static/localtime.js` (UTC times shown in the reader's local time; without it they
stay in UTC). Charts are plain HTML/CSS bars with the pass mark drawn, so the pages work offline
on any browser, down to a 360-pixel phone.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any
from urllib.parse import urlencode

from .. import __version__
from ..scoring.outcome import outcome, plural
from .accounts import Scope
from .db import HubDB, now
from .report import BINS, Attempt, Filters, overview

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1f4e79;color:#fff;padding:14px 24px}header h1{margin:0;font-size:1.4em}
header p{margin:4px 0 0;opacity:.85;font-size:.9em}
main{padding:16px 24px;max-width:1200px}
a{color:#1a5c9e}a:focus,button:focus,input:focus,select:focus{outline:3px solid #f0a500;outline-offset:1px}
.scroll{overflow-x:auto;max-width:100%}
form.filters{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:#33404d}
form.filters select,form.filters input{font-size:1em;padding:4px;max-width:100%;min-width:0}
form.filters button,a.button{background:#1f4e79;color:#fff;border:0;border-radius:4px;padding:6px 12px;
font-size:.95em;text-decoration:none;display:inline-block}
.hist{position:relative}.passmark{position:absolute;top:0;bottom:0;border-left:2px dashed #a93226}
.legend{font-size:.75em;color:#a93226}
@media (max-width:600px){main{padding:10px}header{padding:10px 12px}.card{min-width:0;flex:1 1 40%}
.meter{width:80px}th,td{padding:3px 4px}}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:12px 16px;margin:0 0 16px}
h2{font-size:1.1em;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:1.6em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6eaee;vertical-align:top}
th{background:#eef2f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cases{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.case{border:1px solid #e0e5ea;border-radius:6px;padding:8px 10px}
.case h3{font-size:.95em;margin:0 0 2px}.case p{margin:0 0 6px;font-size:.85em;color:#4a5561}
.hist{display:flex;align-items:flex-end;gap:2px;height:90px;border-bottom:1px solid #8895a2}
.bar{flex:1;display:flex;flex-direction:column;justify-content:flex-end;align-items:center;height:100%}
.bar i{display:block;width:100%;background:#3c7dbf;min-height:1px}
.bar span{font-size:.7em;color:#33404d}
.axis{display:flex;justify-content:space-between;font-size:.7em;color:#6a7682}
.meter{background:#e6eaee;border-radius:3px;height:12px;width:200px;display:inline-block;vertical-align:middle}
.meter i{display:block;height:100%;border-radius:3px;background:#c0392b}
.meter i.ok{background:#2e8b57}.meter i.mid{background:#b4730d}
.warn{color:#a93226}.muted{color:#6a7682}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _when(stamp: str | None) -> str:
    """A time as the reader's local time (localtime.js), UTC until the script has run."""
    if not stamp:
        return "never"
    return f'<time datetime="{_e(stamp)}">{_e(stamp[:16].replace("T", " "))} UTC</time>'


def _link(path: str, query: dict[str, str], text: str) -> str:
    return f'<a href="{_e(path + ("?" + urlencode(query) if query else ""))}">{text}</a>'


def page(title: str, body: list[str], heading: str | None = None) -> str:
    """A whole page: head, header and `body`, escaped by the caller."""
    return "\n".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{_e(title)} · EdgeTutor hub</title><style>{STYLE}</style>",
            '<script src="/static/localtime.js" defer></script></head><body>',
            f"<header><h1>{_e(heading or title)}</h1>",
            f"<p>Generated {_when(now())} · EdgeTutor {_e(__version__)} · "
            '<a href="/" style="color:#fff">overview</a></p></header><main>',
            *body,
            "</main></body></html>",
        ]
    )


def _meter(level: float | None) -> str:
    level = level or 0.0
    cls = "ok" if level >= 0.7 else "mid" if level >= 0.5 else ""
    return f'<span class="meter"><i class="{cls}" style="width:{level * 100:.0f}%"></i></span>'


def _histogram(counts: list[int], pass_mark: float | None = None) -> str:
    top = max(counts) or 1
    bars = "".join(
        f'<div class="bar" title="{i * 10}-{(i + 1) * 10}%: {n}"><span>{n or ""}</span>'
        f'<i style="height:{n / top * 80:.0f}%"></i></div>'
        for i, n in enumerate(counts)
    )
    mark = legend = ""
    if pass_mark is not None:
        mark = f'<div class="passmark" style="left:{pass_mark * 100:.0f}%" title="pass mark {_pct(pass_mark)}"></div>'
        legend = f'<div class="legend">dashed line: pass mark {_pct(pass_mark)}</div>'
    return (
        f'<div class="hist">{bars}{mark}</div>'
        f'<div class="axis"><span>0%</span><span>50%</span><span>100%</span></div>{legend}'
    )


def _select(name: str, label: str, options: list[tuple[str, str]], chosen: str | None) -> str:
    opts = ['<option value="">all</option>'] + [
        f'<option value="{_e(v)}"{" selected" if v == chosen else ""}>{_e(t)}</option>' for v, t in options
    ]
    return (
        f'<label for="f-{name}">{label}<select id="f-{name}" name="{name}">{"".join(opts)}</select></label>'
    )


def filter_form(data: dict[str, Any], f: Filters) -> str:
    c = data["choices"]
    return "".join(
        [
            '<section id="filters"><h2>Show</h2><form class="filters" method="get" action="/">',
            _select("site", "Site", [(s, s) for s in c["sites"]], f.site),
            _select("case", "Case", [(i, t) for i, t in c["cases"]], f.case),
            _select("competency", "Competency", [(x, x) for x in c["competencies"]], f.competency),
            f'<label for="f-since">From<input id="f-since" type="date" name="since" value="{_e(f.since or "")}"></label>',
            f'<label for="f-until">To<input id="f-until" type="date" name="until" value="{_e(f.until or "")}"></label>',
            "<button type=submit>Apply</button>",
            _link("/", {}, "Clear"),
            " ",
            f'<a class="button" href="{_e("/export.csv" + ("?" + urlencode(f.query()) if f.query() else ""))}"'
            " download>Download CSV of these attempts</a>",
            "</form></section>",
        ]
    )


def render(db: HubDB, filters: Filters | None, scope: Scope) -> str:
    """The overview page for the current state of the database at the sites `scope` allows,
    narrowed by `filters`."""
    f = filters or Filters()
    data = overview(db, f, scope)
    parts = [
        filter_form(data, f),
        '<div class="cards">',
        f'<div class="card" id="trainees">Trainees<b>{data["trainees"]}</b></div>',
        f'<div class="card" id="attempts">Attempts<b>{data["attempts"]}</b></div>',
        f'<div class="card" id="pass-rate">Pass rate<b>{_pct(data["pass_rate"])}</b></div>',
        f'<div class="card" id="devices">Devices<b>{len(data["devices"])}</b></div>',
        f'<div class="card" id="practice" title="Results from demo packs: not counted above">'
        f"Practice (demo packs)<b>{data['practice']}</b></div>",
        "</div><br>",
    ]

    parts.append('<section id="sites"><h2>Sites</h2>')
    if data["by_site"]:
        parts.append(
            '<div class="scroll"><table><tr><th>Site</th><th>Trainees</th><th>Attempts</th>'
            "<th>Pass rate</th><th>Mean score</th></tr>"
        )
        for r in data["by_site"]:
            parts.append(
                f"<tr><td>{_link('/', f.query(site=r['site']), _e(r['site']))}</td>"
                f"<td class=n>{r['trainees']}</td><td class=n>{r['attempts']}</td>"
                f"<td class=n>{_pct(r['pass_rate'])}</td><td class=n>{_pct(r['mean_score'])}</td></tr>"
            )
        parts.append("</table></div>")
    else:
        parts.append('<p class="muted">No results match.</p>')
    parts.append("</section>")

    parts.append('<section id="trainee-progress"><h2>Trainees</h2>')
    if data["by_trainee"]:
        parts.append(
            '<div class="scroll"><table><tr><th>Site</th><th>Trainee</th><th>Attempts</th><th>Cases</th>'
            "<th>Pass rate</th><th>Mean score</th><th>Weakest competency</th><th>Last attempt</th></tr>"
        )
        for r in data["by_trainee"]:
            who = _link("/trainee", {"site": r["site"], "name": r["trainee"]}, _e(r["trainee"]))
            parts.append(
                f"<tr><td>{_e(r['site'])}</td><td>{who}</td><td class=n>{r['attempts']}</td>"
                f"<td class=n>{r['cases']}</td><td class=n>{_pct(r['pass_rate'])}</td>"
                f"<td class=n>{_pct(r['mean_score'])}</td><td>{_e(r['weakest'])}</td>"
                f"<td>{_when(r['last_attempt'])}</td></tr>"
            )
        parts.append("</table></div>")
    else:
        parts.append('<p class="muted">No results received yet.</p>')
    parts.append("</section>")

    parts.append(f'<section id="case-scores"><h2>Score distribution per case ({BINS} bands of 10%)</h2>')
    parts.append('<div class="cases">')
    marks = pass_marks(db)
    for r in data["by_case"]:
        title = _link("/", f.query(case=r["case_id"]), _e(r["title"]))
        parts.append(
            f'<div class="case"><h3>{title}</h3>'
            f"<p>{plural(r['attempts'], 'attempt')} by {plural(r['trainees'], 'trainee')} · mean "
            f"{_pct(r['mean_score'])} · pass rate {_pct(r['pass_rate'])}</p>"
            f"{_histogram(r['histogram'], marks.get(r['case_id']))}</div>"
        )
    parts.append("</div>" + ("" if data["by_case"] else '<p class="muted">No cases attempted yet.</p>'))
    parts.append("</section>")

    parts.append('<section id="competencies"><h2>Competencies, weakest first</h2>')
    if data["competencies"]:
        parts.append(
            '<div class="scroll"><table><tr><th>Competency</th><th>Level</th><th></th><th>Trainees</th>'
            "<th>Cases</th></tr>"
        )
        for r in data["competencies"]:
            name = _link("/", f.query(competency=r["competency"]), _e(r["competency"]))
            parts.append(
                f"<tr><td>{name}</td><td class=n>{_pct(r['level'])}</td>"
                f"<td>{_meter(r['level'])}</td><td class=n>{r['trainees']}</td><td class=n>{r['cases']}</td></tr>"
            )
        parts.append("</table></div>")
    else:
        parts.append('<p class="muted">No competencies yet.</p>')
    parts.append("</section>")

    parts.append('<section id="device-list"><h2>Devices</h2>')
    if data["devices"]:
        parts.append(
            '<div class="scroll"><table><tr><th>Device</th><th>Site</th><th>Label</th><th>Last sync</th>'
            "<th>Attempts</th><th>Anomalies</th><th>Status</th></tr>"
        )
        for d in data["devices"]:
            status = f'<span class="warn">revoked {_when(d["revoked"])}</span>' if d["revoked"] else "active"
            anomalies = f'<span class="warn">{d["anomalies"]}</span>' if d["anomalies"] else "0"
            parts.append(
                f"<tr><td><code>{_e(d['device_id'])}</code></td><td>{_e(d['site'])}</td><td>{_e(d['label'])}</td>"
                f"<td>{_when(d['last_sync'])}</td><td class=n>{d['attempts']}</td>"
                f"<td class=n>{anomalies}</td><td>{status}</td></tr>"
            )
        parts.append("</table></div>")
    tokens = data["open_tokens"]
    if tokens:
        parts.append(
            f'<p class="muted">{plural(tokens, "enrolment token")} issued and not used yet: '
            "the device enrols at its first sync.</p>"
        )
    elif not data["devices"]:
        parts.append(
            '<p class="muted">No devices enrolled. Issue a token with <code>edgetutor hub enroll</code>.</p>'
        )
    parts.append("</section>")

    parts.append('<section id="anomalies"><h2>Anomalies (latest 50)</h2>')
    if data["anomalies"]:
        parts.append(
            '<div class="scroll"><table><tr><th>When</th><th>Via</th><th>Device</th><th>Kind</th><th>Seq</th>'
            "<th>Reason</th></tr>"
        )
        for a in data["anomalies"]:
            parts.append(
                f"<tr><td>{_when(a['at'])}</td><td>{_e(a['via'])}</td><td><code>{_e(a['device_id'])}</code></td>"
                f"<td>{_e(a['kind'])}</td><td class=n>{_e(a['seq'])}</td><td>{_e(a['reason'])}</td></tr>"
            )
        parts.append("</table></div>")
    else:
        parts.append('<p class="muted">None: every result received so far chained and verified.</p>')
    parts.append("</section>")
    return page("Cohort progress", parts, "EdgeTutor hub: cohort progress")


def pass_marks(db: HubDB) -> dict[str, float]:
    """Each case's pass mark, as its latest result carried it (for the histograms' line)."""
    marks: dict[str, float] = {}
    for r in db.rows(
        "SELECT case_id, body FROM events WHERE case_id IS NOT NULL AND score IS NOT NULL ORDER BY received"
    ):
        try:
            mark = json.loads(r["body"])["payload"]["score"]["pass_mark"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(mark, int | float) and 0 <= mark <= 1:
            marks[r["case_id"]] = float(mark)
    return marks


CSV_COLUMNS = ("ended_utc", "site", "trainee", "case_id", "case_title", "score", "outcome", "competencies")


def attempts_csv(items: list[Attempt]) -> str:
    """The attempts as CSV (what the overview shows with the same filters)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in items:
        row = [a.ended, a.site, a.trainee, a.case_id, a.title, f"{a.score:.3f}", outcome(a.passed),
               "; ".join(a.competencies)]  # fmt: skip
        # a spreadsheet would run a cell that starts with = + - @ as a formula: names come from devices
        writer.writerow(["'" + v if v.startswith(("=", "+", "-", "@", "\t", "\r")) else v for v in row])
    return out.getvalue()
