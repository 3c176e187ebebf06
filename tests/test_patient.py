"""The patient without a model: retrieval, disclosure, the guard, lookups and actions."""

from __future__ import annotations

import pytest

from edgetutor.cases import load_case
from edgetutor.cases.schema import Case
from edgetutor.errors import EdgeTutorError
from edgetutor.language.lexicon import content_terms, edit_distance, has_negation, numbers_in, stem
from edgetutor.patient.encounter import Encounter, clean_reply, parse_action
from edgetutor.patient.guard import Guard
from edgetutor.patient.prompt import messages, system_prompt
from edgetutor.patient.retrieval import FactIndex

from .conftest import DEMO_SRC, EXAMPLE_CASE


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(EXAMPLE_CASE)


def test_lexicon_basics() -> None:
    assert stem("coughing") == stem("coughs") == "cough"
    assert "~seizure" in content_terms("any fits?")
    assert "~diarrhoea" in content_terms("a running stomach")
    assert numbers_in("three days, 2 tablets and 38.5 degrees") == {3.0, 2.0, 38.5}
    assert has_negation("I haven't") and has_negation("no fits") and not has_negation("yes, often")
    assert edit_distance("fitz", "fits", 2) == 1 and edit_distance("hte", "the", 2) == 1


def test_retrieval_finds_facts_with_lay_words_and_typos(case: Case) -> None:
    index = FactIndex(case)
    assert index.search("how long have you had the fever?").fact_ids[0] == "fever"
    fitz = index.search("any fitz?")
    assert fitz.fact_ids == ["no-convulsions"] and fitz.corrected == {"fitz": "fit"}
    assert index.search("dark pee?").fact_ids == ["urine"]
    assert index.search("r u allergic to any drugs").fact_ids == ["allergies"]


def test_retrieval_returns_nothing_off_topic(case: Case) -> None:
    index = FactIndex(case)
    for q in ("who won the football?", "I am going to examine you now"):
        assert index.search(q).matches == [], q


def test_direct_question_facts_are_withheld_from_general_questions(case: Case) -> None:
    index = FactIndex(case)
    assert index.search("do you sleep under a mosquito net?").fact_ids == ["bed-net"]
    general = index.search("tell me about your evenings at home")
    assert "bed-net" not in general.fact_ids


def test_guard_rejections(case: Case) -> None:
    guard = Guard(case)
    facts = {f.id: f for f in case.facts}
    fever, fits = [facts["fever"]], [facts["no-convulsions"]]
    assert guard.check("I've had this fever three days, mostly in the evenings.", fever).accepted
    assert guard.check("No fits, nothing like that.", fits).accepted
    cases = [
        ("I have had fever for five days.", fever, "new number: 5"),
        ("Yes, I have had some fits.", fits, "polarity"),
        ("I don't have a fever.", fever, "polarity"),
        ("As an AI language model I cannot have a fever.", fever, "breaks character"),
        ("I think it is malaria, doctor.", fever, "diagnosis: malaria"),
        ("Maybe typhoid.", fever, "diagnosis: typhoid"),
        ("Fever for three days and my chest hurts.", fever, "new clinical word: chest"),
        ("", fever, "empty"),
        ("Fever. " * 60, fever, "too long"),
    ]
    for reply, given, reason in cases:
        verdict = guard.check(reply, given)
        assert not verdict.accepted and any(reason in r for r in verdict.reasons), (reply, verdict.reasons)


def test_prompt_never_contains_the_diagnosis() -> None:
    from edgetutor.cases.lint import lint_source

    cases, _ = lint_source(DEMO_SRC)
    for c in cases:
        names = [c.diagnosis.primary.name, *c.diagnosis.primary.synonyms]
        names += [n for d in c.diagnosis.differentials for n in (d.name, *d.synonyms)]
        for fact in c.facts:
            text = " ".join(m["content"] for m in messages(c, "what is wrong with me?", [fact])).lower()
            # Only what the patient knows (their own answers) may be there, never the answer key.
            for name in names:
                if name.lower() not in fact.answer.lower() and name.lower() not in c.facts[0].answer.lower():
                    assert f" {name.lower()} " not in f" {text} ", (c.id, fact.id, name)
            assert c.diagnosis.primary.icd10 not in text


def test_actions_parse() -> None:
    assert parse_action("examine chest") == ("examine", "chest")
    assert parse_action("Order: malaria rdt") == ("order", "malaria rdt")
    assert parse_action("diagnose malaria") == ("diagnose", "malaria")
    assert parse_action("end") == ("end", "")
    assert parse_action("test") == ("question", "test")
    assert parse_action("how are you?") == ("question", "how are you?")


def test_encounter_lookups(case: Case) -> None:
    enc = Encounter(case)
    assert enc.opening().text.startswith("Good morning")
    vitals = enc.act("examine vitals")
    assert vitals.source == "lookup" and "38.7 °C" in vitals.text and "BP 118/76" in vitals.text
    assert "crackles" in enc.act("examine the chest").text
    assert "Spleen tip" in enc.act("examine abdomn").text  # typo
    ears = enc.act("examine ears")
    assert ears.text == "Ears, nose and throat: no abnormality found."
    rdt = enc.act("order mrdt")
    assert "Positive: P. falciparum" in rdt.text and "20 min" in rdt.text
    fbc = enc.act("order FBC")
    assert "not available here" in fbc.text and "district hospital" in fbc.text
    cxr = enc.act("order chest x-ray")
    assert cxr.text == "Chest X-ray: not available at this facility."
    unknown = enc.act("order zzzz qqqq")
    assert not unknown.ok and unknown.text.startswith("Unknown test 'zzzz qqqq'")
    assert enc.examined == ["vitals", "resp.auscultation", "abdo.palpation", "heent.ent"]
    assert enc.ordered == ["malaria.rdt", "haem.fbc", "img.cxr"]


def test_encounter_questions_without_a_model(case: Case) -> None:
    enc = Encounter(case)
    reply = enc.act("any fits?")
    assert reply.source == "authored" and reply.text == "No, I have not had any fits or jerking."
    assert reply.guard and reply.guard["decision"] == "no-model"
    small_talk = enc.act("who won the football?")
    assert small_talk.text == "Sorry, I don't understand what you mean." and small_talk.matched == []
    assert small_talk.guard and small_talk.guard["act"] == "off_topic"
    enc.act("diagnose uncomplicated malaria")
    enc.act("plan artemether-lumefantrine")
    assert enc.act("end").kind == "end" and enc.ended
    assert enc.diagnosis == "uncomplicated malaria" and enc.plan == "artemether-lumefantrine"
    with pytest.raises(EdgeTutorError):
        enc.act("hello?")


def test_scripted_model_reply_is_guarded(case: Case) -> None:
    class Fixed:
        name = "fixed"
        last = None

        def __init__(self, text: str) -> None:
            self.text = text

        def stream(self, msgs, **kw):  # type: ignore[no-untyped-def]
            yield from (w + " " for w in self.text.split(" "))

    good = Encounter(case, Fixed("No fits, no jerking at all.")).act("any fits?")
    assert good.source == "model" and good.guard and good.guard["decision"] == "accept"
    bad = Encounter(case, Fixed("Yes, many fits.")).act("any fits?")
    assert bad.source == "authored" and bad.text == "No, I have not had any fits or jerking."
    assert bad.guard and bad.guard["decision"] == "reject" and bad.guard["draft"] == "Yes, many fits."


def test_clean_reply() -> None:
    assert clean_reply('Joseph: "I have a fever."\nDoctor: ok') == "I have a fever."


def test_notes_are_kept_but_never_scored_or_spoken(case: Case) -> None:
    from edgetutor.scoring.checklist import score
    from edgetutor.scoring.debrief import transcript_from_turns

    enc = Encounter(case)
    reply = enc.act("note fever 3 days, check for danger signs, chloroquine?")
    assert reply.kind == "note" and reply.source == "system" and reply.matched == []
    assert enc.notes == ["fever 3 days, check for danger signs, chloroquine?"]
    enc.act("end")
    result = score(case, transcript_from_turns(r.record() for r in enc.turns))
    assert not result.critical or all(c.id != "chloroquine" for c in result.critical)
    replayed = Encounter(case)
    for r in enc.turns:
        replayed.replay(r.record())
    assert replayed.notes == enc.notes


def test_the_prompt_leaves_out_an_occupation_the_case_does_not_state() -> None:
    case = load_case(EXAMPLE_CASE)
    assert f"a {case.patient.occupation}," in system_prompt(case)
    unstated = case.model_copy(
        update={"patient": case.patient.model_copy(update={"occupation": "not stated"})}
    )
    prompt = system_prompt(unstated)
    assert "not stated" not in prompt and f"{case.age_label} years old, and you are unwell." in prompt
