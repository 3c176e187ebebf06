"""Speak: the prompt that asks the model to rephrase retrieved facts in the persona's voice.

The prompt holds the persona and what the patient knows for THIS question only. It never holds
the diagnosis, the differentials, the examination, the results or the rubric, so the model cannot
leak them however it is asked.

For llama.cpp's KV-cache reuse the messages are [system, example user, example assistant,
user]: everything before the last message is identical on every turn of an encounter, so a turn
only evaluates its own question. Earlier turns are deliberately NOT sent: the facts, not the
conversation, decide what the patient says, and an ever-growing history would cost tokens on a
Raspberry Pi and pull a small model off its facts.
"""

from __future__ import annotations

from ..cases.schema import Case, Fact
from ..cases.taxonomy import occupation_stated


def speaker(case: Case) -> str:
    p = case.patient
    if p.informant:
        return p.informant.name
    return p.name


def system_prompt(case: Case) -> str:
    p = case.patient
    persona = p.persona
    if p.informant:
        who = (
            f"You are {p.informant.name}, the {p.informant.relation} of {p.name}, "
            f"who is {case.age_label} old and unwell. You answer for {p.name}."
        )
    else:
        # An occupation the case does not state is left out, never "a not stated".
        job = f" a {p.occupation}," if occupation_stated(case) else ""
        who = f"You are {p.name}, {case.age_label} years old,{job} and you are unwell."
    return (
        f"{who} You are at a clinic talking to a health worker.\n"
        f"Your manner: {persona.personality}. You speak in {persona.speech_style}. "
        f"You feel {persona.emotional_state}.\n"
        "Rules: answer in the first person, in one or two short sentences, in plain words. "
        "Say only what is in WHAT YOU KNOW, in your own words. Never add a symptom, a number, "
        "a medicine or the name of an illness. If WHAT YOU KNOW says no, you say no."
    )


def user_message(question: str, facts: list[Fact]) -> str:
    known = " ".join(f.answer for f in facts)
    return f'The health worker asks: "{question.strip()}"\nWHAT YOU KNOW: {known}\nYour answer:'


def messages(case: Case, question: str, facts: list[Fact]) -> list[dict[str, str]]:
    """The chat for one turn. Raises nothing; `facts` must not be empty (else use unknown_answer)."""
    example = case.facts[0]
    return [
        {"role": "system", "content": system_prompt(case)},
        {
            "role": "user",
            "content": user_message(
                example.questions[0] if example.questions else "Tell me more.", [example]
            ),
        },
        {"role": "assistant", "content": example.answer},
        {"role": "user", "content": user_message(question, facts)},
    ]


def prefix_key(case: Case) -> str:
    """Names the case's stable prompt prefix in the prefix-state cache (patient/prefix.py)."""
    return f"{case.id}-v{case.version}"


def prefix_variants(case: Case) -> list[list[dict[str, str]]]:
    """Two turns that differ only in their last message: the tokens they share are the stable
    prefix every turn of this case starts with (whatever the chat template adds around it)."""
    first, last = case.facts[0], case.facts[-1]
    return [messages(case, "Where does it hurt?", [first]), messages(case, "When did it begin?", [last])]
