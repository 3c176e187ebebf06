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
def seeded(tmp_path: Path) -> Iterator[tuple[Hub, list[str]]]:
    hub = Hub(tmp_path / "hub.db")
    try:
        kisumu, lodwar = enrolled(hub, "Kisumu Clinic"), enrolled(hub, "Lodwar <b>HC</b>")
        batches = {
            kisumu: [
                kisumu.event(
                    trainee="Amina Okafor", case_id="malaria", title="Fever in a farmer", total=0.85
                ),
                kisumu.event(
                    trainee="Amina Okafor",
                    case_id="pneumonia",
                    title="Cough in a child",
                    total=0.35,
                    specialty="paediatrics",
                    competencies=("respiratory",),
                ),
                kisumu.event(
                    trainee="Baraka Otieno", case_id="malaria", title="Fever in a farmer", total=0.62
                ),
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
    finally:
        hub.stop()


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
    assert "3 attempt(s) by 3 trainee(s)" in malaria.inner_text()
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
    assert weakest.startswith("paediatrics") and "35%" in weakest

    devices = page.locator("#device-list").inner_text()
    for device_id in device_ids:
        row = page.locator("#device-list tr", has_text=device_id).inner_text()
        assert "UTC" in row and "never" not in row  # the last sync is shown
    assert "Kisumu Clinic" in devices

    anomalies = page.locator("#anomalies").inner_text()
    assert "bad-signature" in anomalies and device_ids[0] in anomalies
