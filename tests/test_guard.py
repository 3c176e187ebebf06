"""The sentence-level guard, the checked stream and the independent checker (no language model)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgetutor.cases.loader import load_case
from edgetutor.cases.schema import Case, Fact
from edgetutor.patient import embed
from edgetutor.patient.encounter import Encounter
from edgetutor.patient.fidelity_check import case_violations, violations
from edgetutor.patient.guard import CATEGORIES, Guard
from edgetutor.patient.llm import ScriptedBackend
from edgetutor.patient.sentences import SentenceStream, split_clauses, split_sentences

from .conftest import EXAMPLE_CASE


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(EXAMPLE_CASE)


@pytest.fixture(scope="module")
def encoder() -> embed.Encoder | None:
    return embed.Encoder.load() if embed.available() else None


@pytest.fixture(scope="module")
def guards(case: Case, encoder: embed.Encoder | None) -> list[Guard]:
    """The guard by shared words (no encoder) and, when installed, by meaning."""
    return [Guard(case)] + ([Guard(case, encoder)] if encoder is not None else [])


def facts(case: Case, *ids: str) -> list[Fact]:
    by_id = {f.id: f for f in case.facts}
    return [by_id[i] for i in ids]


def test_sentences_and_clauses() -> None:
    assert split_sentences("I have a fever. It is 37.5 now! Is it bad? Dr. Phiri said so") == [
        "I have a fever.",
        "It is 37.5 now!",
        "Is it bad?",
        "Dr. Phiri said so",
    ]
    assert split_clauses("It has not stopped since it began, but it has stopped now.") == [
        "It has not stopped since it began",
        "it has stopped now",
    ]
    stream = SentenceStream()
    got = []
    for piece in ["I have ", "had it 3", ".", "5 days", ". And", " then"]:
        got += stream.feed(piece)
    assert got == ["I have had it 3.5 days."]
    assert stream.finish() == ["And then"]


# The drafts the project's evaluation found accepted, each with the category that must reject it.
BROKEN = [
    ("I'm sorry for your loss. I'm sorry for your loss.", ["fever"], "stock phrase"),
    ("I have had a fever for three days. I have had a fever for three days.", ["fever"], "repetition"),
    ("She is very hungry, and she is very hungry.", ["fever"], "third person"),
    ("I have had a fever for three days, but it has stopped now.", ["fever"], "new time word"),
    ("My mind is not weak. My body is not weak.", ["alert"], "new clinical word"),
    ("No, my mind is clear. It is a very bad thing for me.", ["alert"], "unsupported"),
    ("I have not hit my head. I have not hit my head.", ["alert"], "repetition"),
    ("I have had a fever for three days. I have lost weight recently.", ["fever"], "new clinical word"),
    ("I have had a fever for three days. He has had nosebleeds.", ["fever"], "third person"),
    ("I have had a fever for three days. I'm going to give you a shot.", ["fever"], "clinician speech"),
    ("I have had a fever for three days. Joseph is tired.", ["fever"], "third person"),
    ("I have had a fever for five days.", ["fever"], "new number"),
    ("I have had a fever for three weeks.", ["fever"], "new time word"),
    ("Yes, I have had some fits.", ["no-convulsions"], "polarity"),
    ("I have had a fever for three days. I think it is malaria.", ["fever"], "diagnosis"),
    ("As an AI I cannot have a fever.", ["fever"], "breaks character"),
    ("It comes and goes, mostly in the evening.", ["fever"], "misses key content"),
    (
        "I have had a fever for three days. " + "It comes and goes, mostly in the evening. " * 3,
        ["fever"],
        "too long",
    ),
    ("I took two tablets of paracetamol, 500 mg.", ["paracetamol"], "new unit"),
    ("", ["fever"], "empty"),
]


@pytest.mark.parametrize(("draft", "ids", "category"), BROKEN)
def test_broken_drafts_are_rejected_with_their_reason(
    guards: list[Guard], case: Case, draft: str, ids: list[str], category: str
) -> None:
    assert category in CATEGORIES
    for guard in guards:
        verdict = guard.check(draft, facts(case, *ids))
        assert not verdict.accepted, (guard.encoder is not None, draft)
        assert category in verdict.categories, (guard.encoder is not None, draft, verdict.reasons)


def test_key_content_follows_the_question(guards: list[Guard], case: Case) -> None:
    # The imported-case example: asked how long, the reply must carry the duration.
    short = Fact(
        id="breathless",
        category="presenting_complaint",
        answer="I have been short of breath for about a year. It is worse when I climb the hill.",
        keywords=["short of breath", "breathless"],
    )
    for guard in guards:
        verdict = guard.check(
            "My main problem is shortness of breath.", [short], "How long have you been short of breath?"
        )
        assert "misses key content" in verdict.categories, verdict.reasons
    fever = facts(case, "fever")
    for guard in guards:
        asked = "how long have you had the fever, and when is it worst?"
        assert guard.check("I have had a fever for three days.", fever, asked).accepted
        assert (
            "misses key content"
            in guard.check("It comes and goes, mostly in the evening.", fever, asked).categories
        )


GOOD = [
    ("I have had a fever for three days. It comes and goes, mostly in the evening.", ["fever"]),
    ("I have had a fever for three days.", ["fever"]),
    ("No, I have not had any fits or jerking.", ["no-convulsions"]),
    ("No fits, nothing like that.", ["no-convulsions"]),
    ("Yes, I shiver and my teeth shake, then I sweat a lot after.", ["chills"]),
]


@pytest.mark.parametrize(("draft", "ids"), GOOD)
def test_faithful_drafts_pass(guards: list[Guard], case: Case, draft: str, ids: list[str]) -> None:
    for guard in guards:
        verdict = guard.check(draft, facts(case, *ids))
        assert verdict.accepted, (guard.encoder is not None, draft, verdict.reasons)


def test_a_paraphrase_passes_by_meaning(case: Case, encoder: embed.Encoder | None) -> None:
    if encoder is None:
        pytest.skip("the sentence encoder package is not installed")
    guard = Guard(case, encoder)
    verdict = guard.check("I shiver, my teeth shake and afterwards I sweat a lot.", facts(case, "chills"))
    assert verdict.accepted, verdict.reasons


def play(
    case: Case, reply: str, question: str = "how long have you had the fever?"
) -> tuple[object, list[str]]:
    shown: list[str] = []
    enc = Encounter(case, ScriptedBackend([reply]))
    return enc.act(question, on_token=shown.append), [p for p in shown if p]


def test_only_checked_sentences_reach_the_screen(case: Case) -> None:
    # A loop: the first sentence is shown and kept, the repeat is cut and recorded.
    reply, shown = play(case, "I have had a fever for three days. I have had a fever for three days.")
    assert shown == ["I have had a fever for three days."]
    assert reply.source == "model" and reply.text == "I have had a fever for three days."
    assert reply.guard["cut"]["reason"].startswith("repetition")
    # An invented finding first: nothing is shown, the authored answer is the reply.
    reply, shown = play(case, "I have lost weight recently. I have had a fever for three days.")
    assert shown == [] and reply.source == "authored"
    assert reply.text.startswith(facts(case, "fever")[0].answer)
    assert reply.guard["decision"] == "reject" and reply.guard["reasons"][0].startswith("new ")
    # A sentence without the key content is held back until one says it.
    reply, shown = play(case, "It comes and goes, mostly in the evening. I have had a fever for three days.")
    assert shown == ["It comes and goes, mostly in the evening.", " I have had a fever for three days."]
    assert reply.source == "model"


def test_generation_is_capped_by_the_authored_length(case: Case) -> None:
    backend = ScriptedBackend(["I have had a fever for three days."])
    Encounter(case, backend).act("how long have you had the fever?")
    guard = Guard(case)
    assert guard.token_limit(facts(case, "fever")) < 64


def test_checker_catches_the_reported_replies(case: Case) -> None:
    fever = ["I have had a fever for three days. It comes and goes, mostly in the evening."]
    assert violations("I'm sorry for your loss. I'm sorry for your loss.", fever)
    assert violations("I have lost weight recently.", fever)
    assert violations("He has had nosebleeds.", fever)
    assert violations("I'm going to give you a shot.", fever)
    assert violations("I have had a fever for five days.", fever)
    assert violations("She is very hungry, and she is very hungry, and she is very hungry.", fever)
    assert violations(
        "It has not stopped since it began, but it has stopped now", ["It has not stopped since it began."]
    )
    assert case_violations(case, "Yes, I have had fits and jerking.", ["no-convulsions"])
    assert case_violations(case, "Maybe it is malaria.", ["fever"])
    assert not violations(fever[0], fever)
    assert not case_violations(case, "No fits or jerking at all.", ["no-convulsions"])


def test_checker_shares_no_code_with_the_guard() -> None:
    source = Path(__file__).resolve().parents[1] / "edgetutor" / "patient" / "fidelity_check.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert imported <= {"__future__", "re", "collections.abc"}, imported


def test_authored_answers_pass_both_readings(encoder: embed.Encoder | None) -> None:
    """Every demo fact's own answer passes the guard and the checker: neither flags the truth."""
    from edgetutor.cases.lint import lint_source

    from .conftest import DEMO_SRC

    for case in lint_source(DEMO_SRC)[0]:
        guards = [Guard(case)] + ([Guard(case, encoder)] if encoder is not None else [])
        for fact in case.facts:
            for guard in guards:
                verdict = guard.check(fact.answer, [fact], fact.questions[0] if fact.questions else None)
                assert verdict.accepted, (case.id, fact.id, verdict.reasons)
            assert not case_violations(case, fact.answer, [fact.id]), (case.id, fact.id)
