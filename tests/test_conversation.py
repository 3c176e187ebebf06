"""A whole consultation: dialogue acts, the standard history taxonomy, defaults, credit, communication."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from edgetutor.cases.lint import lint_case_text
from edgetutor.cases.loader import load_case
from edgetutor.cases.schema import Case
from edgetutor.cases.taxonomy import SECTIONS, TaxonomyError, default_answer, parse_taxonomy, taxonomy
from edgetutor.patient.acts import classify
from edgetutor.patient.encounter import Encounter
from edgetutor.scoring.checklist import score
from edgetutor.scoring.debrief import debrief, format_debrief, transcript_from_turns

from .conftest import DEMO_SRC, EXAMPLE_CASE, ROOT

CASES = sorted((DEMO_SRC / "cases").glob("*.yaml"))


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    from edgetutor.patient.embed import load_encoder

    enc = load_encoder()
    assert enc is not None, "the sentence encoder is installed by scripts/setup"
    return enc


@pytest.fixture(scope="module")
def malaria() -> Case:
    return load_case(EXAMPLE_CASE)


# -- the taxonomy --------------------------------------------------------------------------------


def test_taxonomy_is_large_covers_every_section_and_low_resource_topics() -> None:
    tax = taxonomy()
    assert len(tax.topics) >= 300
    assert {t.section for t in tax.topics} == set(SECTIONS)
    for needed in (
        "env.bednet_use",
        "env.water_source",
        "env.travel_recent",
        "env.tb_contact",
        "env.cost",
        "env.distance",
        "paed.immunisation",
    ):
        assert tax.get(needed) is not None, needed
    asks = {a.lower() for t in tax.topics for a in t.asks}
    for lay in ("hot body", "running stomach", "pass water"):
        assert any(lay in a for a in asks), lay
    for topic in tax.topics:
        assert topic.questions and topic.asks and topic.answerer


def test_taxonomy_defaults_never_state_a_number() -> None:
    for topic in taxonomy().topics:
        for text in topic.default.model_dump().values():
            assert not any(ch.isdigit() for ch in text or ""), topic.id


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        ("version: 1\ntopics:\n  - *TOPIC\n  - *TOPIC\n", "duplicate topic id 'ros.x'"),
        ("version: 1\ntopics:\n  - id: ros.x\n    section: nowhere\n", "topics.0.section"),
        ("[not, a, mapping", "not valid YAML"),
    ],
)
def test_a_broken_taxonomy_is_one_clear_error(mutation: str, message: str) -> None:
    topic = (
        "{id: ros.x, section: systems_review, label: X, asks: [x], questions: ['X?'], "
        "answerer: [patient], default: {adult: 'No.'}}"
    )
    text = mutation.replace("*TOPIC", topic)
    with pytest.raises(TaxonomyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_taxonomy(text)


def test_a_caregiver_default_with_an_unknown_placeholder_is_refused() -> None:
    text = (
        "version: 1\ntopics:\n  - {id: ros.x, section: systems_review, label: X, asks: [x], questions: ['X?'], "
        "answerer: [caregiver], default: {caregiver: 'No, {she} is fine.'}}\n"
    )
    with pytest.raises(TaxonomyError, match="unknown placeholder"):
        parse_taxonomy(text)


# -- cases use it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_every_demo_fact_is_tagged_with_known_topics(path: Path) -> None:
    case = load_case(path)
    ids = taxonomy().ids
    for fact in case.facts:
        assert fact.topics, f"{case.id}: {fact.id} has no topics"
        assert set(fact.topics) <= ids, f"{case.id}: {fact.id}"


def _lint_with(old: str, new: str) -> list[str]:
    text = EXAMPLE_CASE.read_text(encoding="utf-8")
    assert old in text
    _, problems = lint_case_text(text.replace(old, new, 1), "case.yaml")
    return [str(p) for p in problems]


def test_lint_names_file_fact_and_field_for_an_unknown_topic() -> None:
    problems = _lint_with("topics: [ros.fever,", "topics: [ros.no_such_thing, ros.fever,")
    assert any(
        p.startswith("case.yaml:")
        and "facts[0].topics[0]" in p
        and "unknown topic 'ros.no_such_thing'" in p
        and "'fever'" in p
        for p in problems
    ), problems


def test_lint_refuses_a_duplicate_tag_and_a_malformed_or_clashing_topic_answer() -> None:
    dup = _lint_with("topics: [ros.fever,", "topics: [ros.fever, ros.fever,")
    assert any("duplicate topic 'ros.fever'" in p for p in dup), dup
    malformed = _lint_with("topic_answers:\n", "topic_answers:\n  - {topic: ros.jaundice}\n")
    assert any("topic_answers[0].answer" in p for p in malformed), malformed
    clash = _lint_with("topic_answers:\n", "topic_answers:\n  - {topic: ros.fever, answer: I am hot.}\n")
    assert any("already answered by fact 'fever'" in p for p in clash), clash


def test_lint_warns_about_untagged_facts() -> None:
    stripped = re.sub(r"\n    topics: \[[^\]]*\]", "", EXAMPLE_CASE.read_text(encoding="utf-8"))
    case, problems = lint_case_text(stripped, "case.yaml")
    assert case is not None
    warnings = [str(p) for p in problems if p.severity == "warning"]
    assert any("fact 'fever' has no topics" in w for w in warnings), warnings
    assert not [p for p in problems if p.severity == "error"]


def test_defaults_speak_in_the_case_voice(malaria: Case) -> None:
    tax = taxonomy()
    jaundice = tax.get("ros.jaundice")
    assert jaundice is not None
    adult = default_answer(malaria, jaundice)
    assert adult.lower().startswith("no") and "my" in adult.lower()
    child = load_case(DEMO_SRC / "cases" / "pneumonia-child-imci.yaml")
    spoken = default_answer(child, jaundice)
    assert "{" not in spoken and ("his" in spoken or "her" in spoken)


# -- dialogue acts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "act"),
    [
        ("Good morning", "greeting"),
        ("I'm Grace, the clinical officer on duty.", "introduction"),
        ("what is your name?", "identity_name"),
        ("how old is the baby?", "identity_age"),
        ("May I ask you a few questions?", "consent"),
        ("is it ok if I examine your tummy?", "consent_exam"),
        ("I'm so sorry to hear that", "empathy"),
        ("don't worry, we will look after you", "reassurance"),
        ("I am going to listen to your chest now", "examination"),
        ("please lie down on the bed", "instruction"),
        ("thank you", "thanks"),
        ("ok", "backchannel"),
        ("go on", "open_invitation"),
        ("anything else?", "open_invitation"),
        ("what do you think is causing this?", "ice"),
        ("so you've had fever for three days with a headache, is that right?", "summary"),
        ("do you have any questions for me?", "check_understanding"),
        ("I will give you tablets to take twice a day for three days", "plan_explanation"),
        ("goodbye, get well soon", "closing"),
        ("who won the football yesterday?", "off_topic"),
        # Remarks and interruptions that ask nothing of the patient; questions about the weather's
        # effect on the patient are history.
        ("sorry, my phone is ringing", "off_topic"),
        ("the traffic this morning was terrible", "off_topic"),
        ("power cut again, no light since morning", "off_topic"),
        ("someone is calling me, one minute", "off_topic"),
        ("let me get more gloves from the store room", "off_topic"),
        ("did you get wet in the rain?", "history"),
        ("does the heat make the rash worse?", "history"),
        ("wait, what did you take for the fever?", "history"),
        ("hold on, let me check your pulse", "examination"),
        ("have your eyes gone yellow?", "history"),
        ("Hello, I'm Dr Musa. What brings you here today?", "history"),
        # A question after a leading phrase, or typed as a request, is still a question.
        ("on a scale of one to ten how bad is it", "history"),
        ("from 0 to 10, how would you rate the pain", "history"),
        ("rate your pain out of ten", "history"),
        ("I know how hard this is for you", "empathy"),
        ("I know how bad it is", "empathy"),
        ("so what seems to be the problem?", "history"),
        ("so you have had fever for three days and a headache", "summary"),
        ("who have you brought today?", "identity_name"),
        ("and you are?", "identity_name"),
        ("so you are the mother?", "identity_relation"),
        ("can you tell me what you know about your condition?", "ice"),
        ("what have you been told about this?", "ice"),
        ("may I ask you some questions while we put up the drip?", "consent"),
        ("can I ask about your fever?", "consent"),
        ("can you tell me in your own words how you will take the tablets?", "check_understanding"),
        ("I understand you are frightened for the baby", "empathy"),
        ("TB can be cured, you can go back to work", "reassurance"),
        # "going to take good care of", "going to look after": reassurance, not an examination.
        ("we are going to take good care of you here, ok?", "reassurance"),
        ("I'm going to take good care of your baby", "reassurance"),
        ("we are going to look after you", "reassurance"),
        ("we'll take good care of him", "reassurance"),
        # An exclamation before "sorry" is still sympathy; an interruption is still not.
        ("oh sorry", "empathy"),
        ("ayaya sorry mama", "empathy"),
        ("eh sorry the network is bad", "off_topic"),
        ("how can I help you today?", "history"),
        ("can we help you?", "history"),
        ("I am going to take your temperature, ok?", "consent_exam"),
        ("we are going to look at your eyes", "examination"),
        ("most children get well with the right medicine", "reassurance"),
        ("the nurse will start the drip now and I will come back", "plan_explanation"),
        ("ok take care, come back if the fever does not settle", "closing"),
        ("and your good name, mother?", "identity_name"),
        ("try to touch your chin to your chest for me", "instruction"),
        # A short check is answered from the case, never simply agreed with.
        ("so it is a sharp pain?", "history"),
        # Word orders of English as it is spoken in many clinics.
        ("fever is continuous or it comes and goes", "history"),
        ("from where you get drinking water", "history"),
        ("since when is the cough there", "history"),
        ("at the clinic weighing how many kilos was he", "history"),
        ("last visit how much weight was she", "history"),
        ("ok see you in 3 days, come earlier if he cannot drink or gets worse", "closing"),
        # Telling the diagnosis with the plan is not "(do) you have malaria?" asked.
        ("You have malaria, we will give you tablets", "plan_explanation"),
        ("your baby has pneumonia, we will give amoxicillin", "plan_explanation"),
        ("you have fever?", "history"),
    ],
)
def test_dialogue_acts(said: str, act: str) -> None:
    assert classify(said).main == act


def test_an_open_first_question_is_recognised() -> None:
    assert classify("What brings you here today?").open
    assert not classify("Do you have a cough?").open


# -- the consultation ---------------------------------------------------------------------------------


def test_social_turns_get_persona_replies_and_no_credit(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    enc = Encounter(malaria, None, encoder)
    name = enc.act("what is your name?")
    assert "Joseph Banda" in name.text and name.matched == []
    age = enc.act("how old are you?")
    assert "32" in age.text
    for said in ("hello", "ok", "I'm sorry to hear that", "please sit down", "thank you"):
        reply = enc.act(said)
        assert reply.matched == [] and reply.source == "authored", said
        assert reply.text != malaria.patient.unknown_answer, said


def test_unscripted_symptoms_get_a_normal_default_never_another_fact(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    enc = Encounter(malaria, None, encoder)
    eyes = enc.act("have your eyes gone yellow?")
    assert eyes.matched == [] and "yellow" in eyes.text.lower() and eyes.text.lower().startswith("no")
    assert eyes.guard and eyes.guard["defaults"] == ["ros.jaundice"]
    legs = enc.act("any swelling in your legs?")
    assert legs.matched == [] and legs.guard and legs.guard["defaults"]
    fits = enc.act("any fits?")
    assert fits.matched == ["no-convulsions"]


def test_the_patient_greets_the_trainee_by_the_role_they_gave(malaria: Case) -> None:
    from edgetutor.patient.acts import reply_for

    assert reply_for("greeting", malaria, "hello, I'm Sister Ruth") == "Hello, sister."
    assert reply_for("greeting", malaria, "hi, I am the clinical officer") == "Hello."
    assert reply_for("greeting", malaria, "hello") == "Hello, doctor."
    assert reply_for("greeting", malaria, "good evening") == "Hello, good evening."


def test_a_man_asked_about_his_children_is_not_asked_about_pregnancies(encoder) -> None:  # type: ignore[no-untyped-def]
    from edgetutor.cases.taxonomy import applies

    mi = load_case(DEMO_SRC / "cases" / "acute-mi-adult.yaml")
    assert mi.patient.sex.value == "male"
    gravidity = taxonomy().get("obs.gravidity_parity")
    assert gravidity is not None and not applies(mi, gravidity)
    assert applies(load_case(DEMO_SRC / "cases" / "postpartum-haemorrhage.yaml"), gravidity)
    reply = Encounter(mi, None, encoder).act("how many children do you have?")
    assert "home-work" in reply.matched and "children are grown" in reply.text


def test_a_question_in_one_part_is_not_answered_with_neighbouring_facts(encoder) -> None:  # type: ignore[no-untyped-def]
    # Every fact of this case mentions the cough: asking what comes up with it must not also
    # tell the medicines bought and the brother treated for TB (unasked, and unearned credit).
    tb = load_case(DEMO_SRC / "cases" / "tb-pulmonary-adult.yaml")
    reply = Encounter(tb, None, encoder).act("are you bringing up anything when you cough?")
    assert reply.matched == ["cough"]
    # A question in several parts is answered part by part.
    for said, facts in (
        ("do you sweat at night, and have you lost weight?", {"night-sweats", "weight-loss"}),
        ("any night sweats or weight loss?", {"night-sweats", "weight-loss"}),
        ("do you smoke or drink?", {"smoking", "alcohol"}),
    ):
        assert set(Encounter(tb, None, encoder).act(said).matched) == facts, said


def test_eating_and_drinking_is_intake_not_alcohol(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    reply = Encounter(malaria, None, encoder).act("Are you able to eat and drink?")
    assert "alcohol-smoking" not in reply.matched and "beer" not in reply.text, reply.text


def test_two_neighbouring_topics_give_one_default_not_the_same_twice(encoder) -> None:  # type: ignore[no-untyped-def]
    child = load_case(DEMO_SRC / "cases" / "pneumonia-child-imci.yaml")
    reply = Encounter(child, None, encoder).act("is he passing urine?")
    assert reply.text.count("passing urine") == 1 and not reply.text.startswith("No"), reply.text


@pytest.mark.parametrize(
    ("case_id", "said", "fact"),
    [
        # The thing asked about first, then a question that points back to it.
        ("diarrhoea-dehydration-child", "the water u use at home, where do u get it", "water-sanitation"),
        ("tb-pulmonary-adult", "your brother, is he on treatment", "contact"),
        # ... or a question with nothing of its own ("for how long?") after it.
        ("tb-pulmonary-adult", "you said you worked in the mines, for how long?", "mining"),
        # "at home" says where it was given, not who lives there.
        ("diarrhoea-dehydration-child", "what have you given him at home", "medication"),
        # Somebody else: the family, household and contacts answer, not the patient's own symptom.
        ("diarrhoea-dehydration-child", "are any of the neighbours' children sick the same way?", "contacts"),
        ("tb-pulmonary-adult", "has your wife got a cough as well?", "family-well"),
        ("malaria-severe-child", "is anyone at home also having fever", "household"),
        # Before this illness: past episodes and past history, not the symptom now.
        ("diarrhoea-dehydration-child", "has she ever had this before?", "past-health"),
        ("typhoid-fever-adult", "any sickness or operation in the past?", "past-history"),
        # ... but "in the past two weeks" is recent, and "like other children" is about the patient.
        ("malaria-uncomplicated-adult", "have you travelled in the past two weeks", "no-travel"),
        ("malaria-severe-child", "does she talk and play like other children her age?", "development"),
        # What was done for it: the treatment tried, not the symptom it was for.
        ("malaria-uncomplicated-adult", "what have you taken at home for the fever", "paracetamol"),
        ("diarrhoea-dehydration-child", "what did you give her for the loose stools?", "medication"),
        ("diarrhoea-dehydration-child", "have you given any medicine at home", "medication"),
        # The same thing the other way round answers instead of a "No, ..." that contradicts it.
        ("typhoid-fever-adult", "do you have a runny tummy?", "constipation"),
        ("typhoid-fever-adult", "is this the first place you have come to for help?", "prior-meds"),
    ],
)
def test_questions_as_trainees_say_them_reach_their_fact(case_id: str, said: str, fact: str, encoder) -> None:  # type: ignore[no-untyped-def]
    case = load_case(DEMO_SRC / "cases" / f"{case_id}.yaml")
    assert Encounter(case, None, encoder).act(said).matched == [fact], said


def test_teach_back_says_back_what_the_trainee_told_and_nothing_else(encoder) -> None:  # type: ignore[no-untyped-def]
    child = load_case(DEMO_SRC / "cases" / "diarrhoea-dehydration-child.yaml")
    enc = Encounter(child, None, encoder)
    # asked before anything was told, the caregiver says so rather than inventing a method
    assert (
        enc.act("show me how you will prepare the ORS").text
        == "You have not told me yet what I should do for her."
    )
    enc.act("Mix one packet of ORS in one litre of clean water and give her sips after every loose stool.")
    enc.act("I will also give you zinc tablets, one a day for ten days.")
    for ask in ("can you tell me back what you will do at home?", "how will you give the ORS?"):
        reply = enc.act(ask)
        assert reply.text == (
            "Let me say it back: mix one packet of ORS in one litre of clean water and give her sips after"
            " every loose stool. You will also give me zinc tablets, one a day for ten days."
        ), ask
        assert reply.matched == [] and "check_understanding" in (reply.guard or {})["acts"]
    # "do you have any questions?" is not a teach-back
    assert enc.act("do you have any questions?").text == "Yes, I understand. I have no more questions."


def test_said_back_turns_i_and_you_round() -> None:
    from edgetutor.patient.acts import said_back

    assert (
        said_back("I will give you tablets to take twice a day")
        == "you will give me tablets to take twice a day."
    )
    assert said_back("You are going to take one tablet, and I am going to see you next week.") == (
        "I am going to take one tablet, and you are going to see me next week."
    )
    assert (
        said_back("Bring him back if you see blood in the stool")
        == "bring him back if I see blood in the stool."
    )
    assert said_back("We will admit you and your baby") == "you will admit me and my baby."


def test_every_part_of_a_turn_is_answered_name_age_and_the_question(encoder) -> None:  # type: ignore[no-untyped-def]
    child = load_case(DEMO_SRC / "cases" / "pneumonia-child-imci.yaml")
    reply = Encounter(child, None, encoder).act("hello, what is the child's name and how old is he?")
    assert reply.text == (
        "Hello, doctor. His name is Brian Okello. I am Samuel Okello, his father. He is 1 year and 6 months old."
    )
    bite = load_case(DEMO_SRC / "cases" / "snakebite-adult.yaml")
    reply = Encounter(bite, None, encoder).act("I'm Dr Phiri. What is your name, and what happened?")
    assert reply.text.startswith("My name is Chebet Jerop. A snake bit me") and reply.matched == ["bite"]
    # "what is the problem with the baby" asks for the presenting complaint, however it is worded
    for said in ("what is the problem with the baby?", "what's the matter with him today?"):
        assert Encounter(child, None, encoder).act(said).matched == ["cough"], said


@pytest.mark.parametrize(
    ("said", "fact"),
    [
        ("any1 else sick in ur school or hostel", "others-sick"),
        ("hav u had the meningitis vaccine", "vaccination"),
        ("did u take anythin for the pain", "medicines"),
    ],
)
def test_text_message_spellings_are_read_as_words(said: str, fact: str, encoder) -> None:  # type: ignore[no-untyped-def]
    case = load_case(DEMO_SRC / "cases" / "meningitis-bacterial-adult.yaml")
    assert Encounter(case, None, encoder).act(said).matched == [fact], said


def test_a_default_is_about_whom_the_question_asks_and_says_nothing_twice(encoder) -> None:  # type: ignore[no-untyped-def]
    child = load_case(DEMO_SRC / "cases" / "sickle-cell-crisis-child.yaml")
    said = {
        q: Encounter(child, None, encoder).act(q).text
        for q in (
            "has she had a stroke or weakness of one side",
            "does diabetes run in the family?",
            "does she drink enough water",
        )
    }
    assert "family" not in said["has she had a stroke or weakness of one side"], said
    assert (
        "family" in said["does diabetes run in the family?"]
        and "told me I have" not in said["does diabetes run in the family?"]
    ), said
    assert "how to answer" not in said["does she drink enough water"], said


def test_pressing_on_an_examined_part_hurts_only_where_the_finding_is_tender(encoder) -> None:  # type: ignore[no-untyped-def]
    typhoid = load_case(DEMO_SRC / "cases" / "typhoid-fever-adult.yaml")  # tender right iliac fossa
    enc = Encounter(typhoid, None, encoder)
    enc.act("examine abdomen")
    assert enc.act("does it hurt when I press here?").text == "Yes, it hurts when you press there."
    malaria = load_case(DEMO_SRC / "cases" / "malaria-uncomplicated-adult.yaml")  # "Soft, non-tender"
    enc = Encounter(malaria, None, encoder)
    enc.act("examine abdomen")
    reply = enc.act("tell me if this is sore")
    assert reply.text == "No, that does not hurt." and reply.matched == []


def test_an_apology_for_an_interruption_is_not_empathy() -> None:
    for said in ("sorry one second, someone is at the door", "sorry for the delay, the network is bad"):
        assert "empathy" not in classify(said).acts, said
    for said in ("sorry to hear that", "sorry, that must hurt"):
        assert "empathy" in classify(said).acts, said


def test_see_also_must_name_known_topics() -> None:
    text = (ROOT / "edgetutor" / "cases" / "history_topics.yaml").read_text(encoding="utf-8")
    broken = text.replace("see_also: [ros.constipation,", "see_also: [ros.no_such_topic,", 1)
    assert broken != text
    with pytest.raises(
        TaxonomyError, match="ros.diarrhoea: see_also names an unknown topic 'ros.no_such_topic'"
    ):
        parse_taxonomy(broken)


def test_a_wrong_check_is_answered_from_the_case_not_agreed_with(encoder) -> None:  # type: ignore[no-untyped-def]
    mi = load_case(DEMO_SRC / "cases" / "acute-mi-adult.yaml")
    reply = Encounter(mi, None, encoder).act("so it is a sharp pain?")
    assert "crushing" in reply.text and "that is right" not in reply.text.lower(), reply.text


def test_parts_answered_apart_never_contradict_each_other(encoder) -> None:  # type: ignore[no-untyped-def]
    typhoid = load_case(DEMO_SRC / "cases" / "typhoid-fever-adult.yaml")
    reply = Encounter(typhoid, None, encoder).act("any loose motions or constipation?")
    assert "hard" in reply.text and "normal" not in reply.text, reply.text


def test_questions_are_divided_only_where_each_part_asks_something() -> None:
    from edgetutor.patient.history import question_parts

    assert question_parts("do you smoke or drink?") == ["do you smoke", "do you drink"]
    assert question_parts("any pain or swelling in your legs?") == [
        "any pain in your legs",
        "any swelling in your legs",
    ]
    for one in (
        "the fits, how many times and for how long?",  # one subject, two details
        "are you allergic to aspirin or any other drug?",  # an elaboration
        "any long term illness like sickle cell or diabetes?",  # examples of one thing
        "does it come on and off?",  # no clinical word in "off"
        "are you able to eat and drink?",  # what goes in by mouth, not "do you drink" (alcohol)
        "is he able to drink or breastfeed?",
        "what brings you here today?",
    ):
        assert question_parts(one) == [one], one


def test_open_invitations_volunteer_untold_facts_then_stop(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    enc = Encounter(malaria, None, encoder)
    volunteered = [f for f in malaria.facts if f.disclosure.value == "volunteered"]
    said = [enc.act("tell me more") for _ in volunteered]
    assert [r.text for r in said] == [f.answer for f in volunteered]
    assert all(r.matched == [] for r in said)
    assert enc.act("anything else?").text == "That's all I can think of."


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_filler_alone_earns_no_history_credit(path: Path, encoder) -> None:  # type: ignore[no-untyped-def]
    case = load_case(path)
    enc = Encounter(case, None, encoder)
    for said in ("ok", "go on", "anything else?", "I see", "hmm", "tell me more", "alright", "what else?"):
        enc.act(said)
    enc.act("end")
    result = score(case, transcript_from_turns(r.record() for r in enc.turns))
    assert result.domains["history"] == 0.0, case.id


def test_communication_is_scored_from_the_trainees_own_turns(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    enc = Encounter(malaria, None, encoder)
    for said in (
        "Good morning, I'm Amina, the clinical officer.",
        "What is your name?",
        "What brings you here today?",
        "May I ask you some questions?",
        "That must be hard for you.",
        "What worries you most about this?",
        "So you have had fever for three days with headache and shivering, is that right?",
        "I will give you tablets to take twice a day for three days.",
        "Do you have any questions for me?",
        "end",
    ):
        enc.act(said)
    result = score(malaria, transcript_from_turns(r.record() for r in enc.turns))
    comm = {i.target.split(":")[1]: i for i in result.items if i.domain == "communication"}
    assert comm and all(i.done for i in comm.values()), {k: v.done for k, v in comm.items()}
    assert result.domains["communication"] == 1.0
    assert comm["introduction"].evidence == "Good morning, I'm Amina, the clinical officer."
    text = format_debrief(debrief(malaria, result))
    assert '(you said: "What brings you here today?")' in text


def test_jargon_in_the_plan_explanation_is_not_plain(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    enc = Encounter(malaria, None, encoder)
    enc.act("I will give you AL 80/480 mg PO BD for 3 days")
    enc.act("end")
    result = score(malaria, transcript_from_turns(r.record() for r in enc.turns))
    plain = next(i for i in result.items if i.target == "communication:plain_plan")
    assert not plain.done


@pytest.mark.slow
def test_topic_embeddings_are_computed_once_and_cached(encoder, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edgetutor.patient import topics

    monkeypatch.setenv("EDGETUTOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(topics, "_VECTORS", {})
    monkeypatch.setattr(topics, "_shipped", lambda *a: None)  # as if the taxonomy had just changed
    topic_vectors = topics.topic_vectors
    first = topic_vectors(taxonomy(), encoder)
    cached = list((tmp_path / "cache").glob("topics-*.npy"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    monkeypatch.setattr(topics, "_VECTORS", {})  # a new process reads the file, computes nothing
    calls: list[int] = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw))
    again = topic_vectors(taxonomy(), encoder)
    assert cached[0].stat().st_mtime_ns == stamp and again.shape == first.shape and calls == []
    cached[0].write_bytes(b"not an array")  # damaged: rebuilt, never trusted
    monkeypatch.setattr(topics, "_VECTORS", {})
    rebuilt = topic_vectors(taxonomy(), encoder)
    assert rebuilt.shape == first.shape and calls == [first.shape[0]]


def test_shipped_topic_vectors_match_the_taxonomy(encoder) -> None:  # type: ignore[no-untyped-def]
    from edgetutor.patient import topics

    texts, _, _ = topics.semantic_texts(topics.topic_docs(taxonomy()))
    shipped = topics._shipped(topics.vector_key(taxonomy(), encoder), len(texts), encoder.dim)
    assert shipped is not None, (
        "edgetutor/cases/history_topics.npy is stale: run python scripts/embed_topics.py"
    )
    fresh = encoder.encode(texts[:20])
    assert (abs(shipped[:20] - fresh) < 0.01).all()


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "bench_conversation", ROOT / "benchmarks" / "bench_conversation.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_conversation_set_accuracy_and_no_credit_from_filler(encoder) -> None:  # type: ignore[no-untyped-def]
    result = _bench().evaluate("conversation", encoder)
    assert result["utterances"] >= 13 * 40
    assert result["filler_history_credit"] == 0
    assert result["accuracy"] >= 0.95, [f for f in result["failures"]][:10]


@pytest.mark.parametrize(
    ("occupation", "said"),
    [
        ("engineer", "I am an engineer."),
        ("retired school teacher", "I am a retired school teacher."),
        ("unemployed", "I am unemployed."),
        ("works at health food store", "I work at health food store."),
        # An imported case whose source gives no work: the topic's own answer, never "I am a not stated".
        ("not stated", "I'm not sure how to describe my work to you."),
    ],
)
def test_the_patient_says_what_work_they_do_in_their_own_words(
    malaria: Case, occupation: str, said: str
) -> None:
    """One sentence for "what do you do for work?" and for the occupation topic."""
    patient = malaria.patient.model_copy(update={"occupation": occupation})
    case = malaria.model_copy(
        update={"patient": patient, "facts": [f for f in malaria.facts if "soc.occupation" not in f.topics]}
    )
    reply = Encounter(case, None).act("What do you do for work?")
    assert reply.text == said
    topic = taxonomy().get("soc.occupation")
    assert topic is not None and default_answer(case, topic) == said


def test_who_came_with_the_patient_is_the_cases_fact(malaria: Case, encoder) -> None:  # type: ignore[no-untyped-def]
    """ "Who is with you today?": the case's own answer when it has one. A case that does not say
    gets the topic's neutral answer, never a symptom and never an invented companion."""
    pph = load_case(DEMO_SRC / "cases" / "postpartum-haemorrhage.yaml")
    companion = taxonomy().get("env.companion")
    assert companion is not None
    for asked in ("Who came with you today?", "Did you come alone?", "Is anyone with you?"):
        assert Encounter(pph, None, encoder).act(asked).matched == ["family-social"], asked
        alone = malaria.model_copy(
            update={"facts": [f for f in malaria.facts if "env.companion" not in f.topics]}
        )
        reply = Encounter(alone, None, encoder).act(asked)
        assert reply.matched == [] and reply.text == default_answer(alone, companion), asked


def test_a_newborns_age_and_a_carers_own_life_are_answered_plainly(encoder) -> None:  # type: ignore[no-untyped-def]
    """A newborn is "less than a month old", never "0 months old"; asked "are you married?", the
    carer speaks for herself, not "he is too young for that"."""
    child = load_case(DEMO_SRC / "cases" / "pneumonia-child-imci.yaml")
    newborn = child.model_copy(
        update={"patient": child.patient.model_copy(update={"age_years": 0, "age_months": 0})}
    )
    he = "She" if child.patient.sex.value == "female" else "He"
    assert (
        Encounter(newborn, None, encoder).act("How old is the baby?").text
        == f"{he} is less than a month old."
    )
    married = Encounter(child, None, encoder).act("Are you married?")
    assert "too young" not in married.text


def test_a_blood_group_question_is_not_answered_with_the_hiv_test(encoder) -> None:  # type: ignore[no-untyped-def]
    """ "Do you know your blood group?" has its own topic: a case that does not say gets "I don't
    know my blood group", not the antenatal HIV result that the old 'tests in pregnancy' topic
    gave; the antenatal tests are still answered from the case."""
    pph = load_case(DEMO_SRC / "cases" / "postpartum-haemorrhage.yaml")
    group = taxonomy().get("pmh.blood_group")
    assert group is not None
    for asked in ("Do you know your blood group?", "what is your blood group", "are you rhesus negative?"):
        reply = Encounter(pph, None, encoder).act(asked)
        assert reply.matched == [] and reply.text == default_answer(pph, group), asked
    assert Encounter(pph, None, encoder).act("Were you tested for HIV in this pregnancy?").matched == ["hiv"]
    child = load_case(DEMO_SRC / "cases" / "pneumonia-child-imci.yaml")
    assert "blood group" in Encounter(child, None, encoder).act("do you know the baby's blood group?").text


def test_how_do_you_feel_asks_about_the_illness_and_about_all_this_asks_about_feelings(
    malaria: Case,
    encoder,  # type: ignore[no-untyped-def]
) -> None:
    """A bare "how do you feel?" in a consultation asks about the illness: the presenting
    complaint, as "how are you feeling today?" already was. "How do you feel about all this?"
    asks about feelings (ICE), answered as before."""
    pc = next(f.id for f in malaria.facts if "hpc.main_complaint" in f.topics)
    for asked in ("How do you feel?", "how have you been feeling?", "tell me how you are feeling"):
        assert Encounter(malaria, None, encoder).act(asked).matched == [pc], asked
    feelings = taxonomy().get("ice.feelings")
    assert feelings is not None
    reply = Encounter(malaria, None, encoder).act("How do you feel about all this?")
    assert reply.matched == [] and reply.text == default_answer(malaria, feelings)
