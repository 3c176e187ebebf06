"""One wording for outcomes, shared by the debrief, progress, the library and the hub."""

from __future__ import annotations

from edgetutor.scoring.outcome import headline, outcome, percent, plural


def test_one_wording_for_outcomes() -> None:
    assert (outcome(True), outcome(False)) == ("Pass", "Not yet")
    assert percent(0.333) == "33%" and percent(None) == "-"
    assert plural(1, "attempt") == "1 attempt" and plural(2, "attempt") == "2 attempts"
    doc = {"score": 0.5, "pass_mark": 0.6, "passed": False, "critical_errors": []}
    assert headline(doc) == "Not yet: 50%, below the pass mark of 60%."
    capped = {
        **doc,
        "critical_errors": [
            {"error": "No aspirin", "evidence": "missed: aspirin", "cap": 0.5},
            {
                "error": "Gave fibrinolysis after a stroke",
                "evidence": "plan mentions 'streptokinase'",
                "cap": 0.0,
            },
        ],
    }
    assert headline(capped) == (
        "Not yet: 50%. Critical error (and 1 other): Gave fibrinolysis after a stroke "
        "(plan mentions 'streptokinase'), which fails the attempt. Pass mark 60%."
    )
    assert headline({**doc, "score": 0.82, "passed": True}) == "Pass: 82% (pass mark 60%)"
