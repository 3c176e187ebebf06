"""The coordinators' dashboard in a real headless browser (Debian's chromium through Playwright),
served by a real hub seeded over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from edgetutor.sync import protocol
from tests.hub_helpers import Hub, enrolled

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def seeded(sqlite_hub: Hub) -> Iterator[tuple[Hub, list[str]]]:
    hub = sqlite_hub
    kisumu, lodwar = enrolled(hub, "Kisumu Clinic"), enrolled(hub, "Lodwar <b>HC</b>")
    batches = {
        kisumu: [
            kisumu.event(trainee="Amina Okafor", case_id="malaria", title="Fever in a farmer", total=0.85),
            kisumu.event(
                trainee="Amina Okafor",
                case_id="pneumonia",
                title="Cough in a child",
                total=0.35,
                specialty="paediatrics",
                competencies=("respiratory",),
            ),
            kisumu.event(trainee="Baraka Otieno", case_id="malaria", title="Fever in a farmer", total=0.62),
        ],
        lodwar: [lodwar.event(trainee=HOSTILE, case_id="malaria", title="Fever in a farmer", total=0.15)],
    }
    for device, events in batches.items():
        status, reply = hub.post(f"{protocol.API}/events", {"device_id": device.id, "events": events})
        assert status == 200 and reply["accepted"] == len(events)
    # One refused event, so the anomaly list has something to show.
    forged = kisumu.event(key=lodwar.key)
    hub.post(f"{protocol.API}/events", {"device_id": kisumu.id, "events": [forged]})
    yield hub, [kisumu.id, lodwar.id]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "browser-profile"), executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.mark.slow
def test_dashboard_shows_cohort_cases_competencies_devices(
    seeded: tuple[Hub, list[str]], page: Page, tmp_path: Path
) -> None:
    hub, device_ids = seeded
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = page.goto(hub.url + "/")
    assert response is not None and response.status == 200
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    assert page.locator("#trainees b").inner_text() == "3"
    assert page.locator("#attempts b").inner_text() == "4"
    assert page.locator("#pass-rate b").inner_text() == "50%"

    trainees = page.locator("#trainee-progress").inner_text()
    assert "Amina Okafor" in trainees and "Baraka Otieno" in trainees
    # The hostile name is shown as text, and nothing ran.
    assert HOSTILE in trainees
    assert "Lodwar <b>HC</b>" in trainees
    assert page.locator("#trainee-progress script").count() == 0
    assert page.locator("#trainee-progress b").count() == 0
    assert dialogs == []

    malaria = page.locator(".case", has_text="Fever in a farmer")
    assert "3 attempts by 3 trainees" in malaria.inner_text()
    assert "pass mark 60%" in malaria.inner_text()  # the line drawn on the histogram
    assert malaria.locator(".passmark").get_attribute("style") == "left:60%"
    # Scores 0.85, 0.62, 0.15: one attempt each in the 10-20%, 60-70% and 80-90% bands.
    bars = malaria.locator(".bar")
    assert bars.count() == 10
    assert [bars.nth(i).inner_text().strip() for i in range(10)] == [
        "",
        "1",
        "",
        "",
        "",
        "",
        "1",
        "",
        "1",
        "",
    ]
    assert bars.nth(6).get_attribute("title") == "60-70%: 1"

    weakest = page.locator("#competencies tr").nth(1).inner_text()
    # the pneumonia attempt's two competencies tie at 35%: the specialty and the controlled
    # "respiratory", shown by its label
    assert weakest.split("\t")[0] in ("paediatrics", "Cough and breathing problems") and "35%" in weakest

    devices = page.locator("#device-list").inner_text()
    for device_id in device_ids:
        row = page.locator("#device-list tr", has_text=device_id).inner_text()
        assert "never" not in row  # the last sync is shown, in local time (the UTC text is its title)
        stamp = page.locator("#device-list tr", has_text=device_id).locator("time")
        assert (stamp.get_attribute("title") or "").endswith(" UTC") and stamp.get_attribute("datetime")
    assert "Kisumu Clinic" in devices

    anomalies = page.locator("#anomalies").inner_text()
    assert "bad-signature" in anomalies and device_ids[0] in anomalies


def _trainee_link(page: Page, name: str) -> str:
    href = page.locator("#trainee-progress a", has_text=name).first.get_attribute("href")
    assert href is not None
    return href


@pytest.mark.slow
def test_a_coordinator_drills_down_filters_and_downloads(
    seeded: tuple[Hub, list[str]], page: Page, tmp_path: Path
) -> None:
    """Site -> trainee -> attempt, by links; filters that narrow every table; a CSV of what is shown."""
    hub, _ = seeded
    page.goto(hub.url + "/")
    # Site: a link that narrows the page to that site.
    page.locator("#sites a", has_text="Kisumu Clinic").click()
    assert "site=Kisumu+Clinic" in page.url
    assert page.locator("#attempts b").inner_text() == "3"
    assert "Lodwar" not in page.locator("#trainee-progress").inner_text()
    # Trainee: their attempts, newest first, each a link to its itemised result.
    page.goto(hub.url + _trainee_link(page, "Amina Okafor"))
    assert page.locator("h1").inner_text() == "Amina Okafor (Kisumu Clinic)"
    rows = page.locator("#attempts tr")
    assert rows.count() == 3  # header + 2 attempts
    assert "Cough in a child" in rows.nth(1).inner_text() or "Cough in a child" in rows.nth(2).inner_text()
    page.locator("#attempts a", has_text="Cough in a child").click()
    result = page.locator("#result").inner_text()
    assert result.startswith("Not yet: 35% (pass mark 60%)")
    assert "history" in result and "35%" in result
    # Times are shown in the reader's local time by the hub's own script (UTC without it).
    assert page.locator("time").first.get_attribute("title", timeout=2000) is not None

    # Filters: a form with labelled controls; the CSV link carries the same filters.
    page.goto(hub.url + "/")
    for control in ("f-site", "f-case", "f-competency", "f-since", "f-until"):
        assert page.locator(f"label[for={control}]").count() == 1
    page.select_option("#f-case", "malaria")
    page.locator("#filters button").click()
    assert page.locator("#attempts b").inner_text() == "3"
    href = page.locator("#filters a[download]").get_attribute("href")
    assert href == "/export.csv?case=malaria"
    status, body = hub.get_text(href)
    lines = body.strip().splitlines()
    assert status == 200 and lines[0].startswith("ended_utc,site,trainee,case_id")
    assert len(lines) == 4 and all(",malaria," in line for line in lines[1:])
    assert (
        sum("Not yet" in line for line in lines[1:]) == 1 and sum(",Pass," in line for line in lines[1:]) == 2
    )

    # A bad filter is a clear 400, an unknown trainee or attempt a 404.
    assert hub.get_text("/?since=yesterday")[0] == 400
    assert "since must be a date" in hub.get_text("/?since=yesterday")[1]
    assert hub.get_text("/trainee?site=Nowhere&name=Nobody")[0] == 404
    assert hub.get_text("/attempt/not-an-event")[0] == 404


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390, 360])
def test_the_dashboard_fits_the_screen(seeded: tuple[Hub, list[str]], page: Page, width: int) -> None:
    hub, _ = seeded
    page.set_viewport_size({"width": width, "height": 800})
    for path in ("/", _trainee_link_after(page, hub)):
        page.goto(hub.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, width, overflow)
    # Every link and button is reachable from the keyboard.
    page.goto(hub.url + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.tagName")
    assert focused in ("A", "SELECT", "INPUT", "BUTTON")


def _trainee_link_after(page: Page, hub: Hub) -> str:
    page.goto(hub.url + "/")
    return _trainee_link(page, "Amina Okafor")
