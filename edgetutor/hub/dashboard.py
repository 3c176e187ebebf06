"""The coordinators' dashboard: one server-rendered HTML page, no script, no external files.

Everything shown that came from a device (trainee names, case titles, labels, anomaly reasons)
passes through `_e` (html.escape) before it is placed in the page; the page is also served with
a Content-Security-Policy that allows no script at all. Charts are plain HTML/CSS bars, so the
page works offline and on any browser a coordinator has.
"""

from __future__ import annotations

import html
from typing import Any

from .. import __version__
from .db import HubDB, now
from .report import BINS, overview

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1f4e79;color:#fff;padding:14px 24px}header h1{margin:0;font-size:1.4em}
header p{margin:4px 0 0;opacity:.85;font-size:.9em}
main{padding:16px 24px;max-width:1200px}
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
.meter i.ok{background:#2e8b57}.meter i.mid{background:#d68910}
.warn{color:#a93226}.muted{color:#6a7682}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _when(stamp: str | None) -> str:
    return "never" if not stamp else _e(stamp[:16].replace("T", " ") + " UTC")


def _meter(level: float | None) -> str:
    level = level or 0.0
    cls = "ok" if level >= 0.7 else "mid" if level >= 0.5 else ""
    return f'<span class="meter"><i class="{cls}" style="width:{level * 100:.0f}%"></i></span>'


def _histogram(counts: list[int]) -> str:
    top = max(counts) or 1
    bars = "".join(
        f'<div class="bar" title="{i * 10}-{(i + 1) * 10}%: {n}"><span>{n or ""}</span>'
        f'<i style="height:{n / top * 80:.0f}%"></i></div>'
        for i, n in enumerate(counts)
    )
    return f'<div class="hist">{bars}</div><div class="axis"><span>0%</span><span>50%</span><span>100%</span></div>'


def render(db: HubDB) -> str:
    """The whole dashboard page for the current state of the database."""
    data = overview(db)
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>EdgeTutor hub</title><style>{STYLE}</style></head><body>",
        "<header><h1>EdgeTutor hub: cohort progress</h1>",
        f"<p>Generated {_when(now())} · EdgeTutor {_e(__version__)}</p></header><main>",
        '<div class="cards">',
        f'<div class="card" id="trainees">Trainees<b>{data["trainees"]}</b></div>',
        f'<div class="card" id="attempts">Attempts<b>{data["attempts"]}</b></div>',
        f'<div class="card" id="pass-rate">Pass rate<b>{_pct(data["pass_rate"])}</b></div>',
        f'<div class="card" id="devices">Devices<b>{len(data["devices"])}</b></div>',
        f'<div class="card" id="practice" title="Results from demo packs: not counted above">'
        f"Practice (demo packs)<b>{data['practice']}</b></div>",
        "</div><br>",
    ]

    parts.append('<section id="trainee-progress"><h2>Trainees</h2>')
    if data["by_trainee"]:
        parts.append(
            "<table><tr><th>Site</th><th>Trainee</th><th>Attempts</th><th>Cases</th><th>Pass rate</th>"
            "<th>Mean score</th><th>Weakest competency</th><th>Last attempt</th></tr>"
        )
        for r in data["by_trainee"]:
            parts.append(
                f"<tr><td>{_e(r['site'])}</td><td>{_e(r['trainee'])}</td><td class=n>{r['attempts']}</td>"
                f"<td class=n>{r['cases']}</td><td class=n>{_pct(r['pass_rate'])}</td>"
                f"<td class=n>{_pct(r['mean_score'])}</td><td>{_e(r['weakest'])}</td>"
                f"<td>{_when(r['last_attempt'])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No results received yet.</p>')
    parts.append("</section>")

    parts.append(f'<section id="case-scores"><h2>Score distribution per case ({BINS} bands of 10%)</h2>')
    parts.append('<div class="cases">')
    for r in data["by_case"]:
        parts.append(
            f'<div class="case"><h3>{_e(r["title"])}</h3>'
            f"<p>{r['attempts']} attempt(s) by {r['trainees']} trainee(s) · mean {_pct(r['mean_score'])}"
            f" · pass rate {_pct(r['pass_rate'])}</p>{_histogram(r['histogram'])}</div>"
        )
    parts.append("</div>" + ("" if data["by_case"] else '<p class="muted">No cases attempted yet.</p>'))
    parts.append("</section>")

    parts.append('<section id="competencies"><h2>Competencies, weakest first</h2>')
    if data["competencies"]:
        parts.append(
            "<table><tr><th>Competency</th><th>Level</th><th></th><th>Trainees</th><th>Cases</th></tr>"
        )
        for r in data["competencies"]:
            parts.append(
                f"<tr><td>{_e(r['competency'])}</td><td class=n>{_pct(r['level'])}</td>"
                f"<td>{_meter(r['level'])}</td><td class=n>{r['trainees']}</td><td class=n>{r['cases']}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append('<p class="muted">No competencies yet.</p>')
    parts.append("</section>")

    parts.append('<section id="device-list"><h2>Devices</h2>')
    if data["devices"]:
        parts.append(
            "<table><tr><th>Device</th><th>Site</th><th>Label</th><th>Last sync</th><th>Acked seq</th>"
            "<th>Attempts</th><th>Anomalies</th><th>Status</th></tr>"
        )
        for d in data["devices"]:
            status = f'<span class="warn">revoked {_when(d["revoked"])}</span>' if d["revoked"] else "active"
            anomalies = f'<span class="warn">{d["anomalies"]}</span>' if d["anomalies"] else "0"
            parts.append(
                f"<tr><td><code>{_e(d['device_id'])}</code></td><td>{_e(d['site'])}</td><td>{_e(d['label'])}</td>"
                f"<td>{_when(d['last_sync'])}</td><td class=n>{d['acked_seq']}</td><td class=n>{d['attempts']}</td>"
                f"<td class=n>{anomalies}</td><td>{status}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(
            '<p class="muted">No devices enrolled. Issue a token with <code>edgetutor hub enroll</code>.</p>'
        )
    parts.append("</section>")

    parts.append('<section id="anomalies"><h2>Anomalies (latest 50)</h2>')
    if data["anomalies"]:
        parts.append(
            "<table><tr><th>When</th><th>Via</th><th>Device</th><th>Kind</th><th>Seq</th><th>Reason</th></tr>"
        )
        for a in data["anomalies"]:
            parts.append(
                f"<tr><td>{_when(a['at'])}</td><td>{_e(a['via'])}</td><td><code>{_e(a['device_id'])}</code></td>"
                f"<td>{_e(a['kind'])}</td><td class=n>{_e(a['seq'])}</td><td>{_e(a['reason'])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append('<p class="muted">None: every result received so far chained and verified.</p>')
    parts.append("</section></main></body></html>")
    return "\n".join(parts)
