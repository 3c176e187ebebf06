"""The encounter: one trainee action in, one patient (or clinic) reply out.

Actions, one per line, the same words in the app and in `edgetutor run --script`:
- free text: a question to the patient (retrieve, then speak, then check);
- `examine <system or finding>` (also `exam`), `order <test>` (also `test`): looked up in the
  case, never generated;
- `diagnose <text>`, `plan <text>`: recorded for scoring;
- `note <text>`: the trainee's own note (kept with the attempt, never scored, never sent to
  the model);
- `end`: finishes the encounter.

What an examination or test the case does not describe returns (a documented choice):
- an examination of a standard code the case leaves out: "No abnormality found" (authors list
  what is abnormal or teaching-relevant; the rest of a body is presumed normal);
- a standard test the case leaves out: "Not available at this facility" (rural clinics have few
  tests, and EdgeTutor never invents a result);
- a name that matches nothing: an error with the closest names as suggestions.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cases.codes import EXAM_CODES, TEST_CODES
from ..cases.schema import Case, Disclosure, Fact, Finding, Investigation
from ..errors import EdgeTutorError
from ..language.lexicon import edit_distance, normalise
from .acts import HISTORY, IDENTITY, TEACH_BACK, classify, expand_texting, reply_for, rules, said_back
from .embed import Embedder
from .guard import Guard
from .guard import words as guard_words
from .history import History
from .llm import Backend
from .prompt import messages, prefix_key, prefix_variants
from .speak import speak_checked, tidy

MAX_TOKENS = 64
# "Does it hurt when I press here?", "tell me if this is sore" during an examination.
PRESSED = re.compile(
    r"\b(hurt|hurts|hurting|pain|paining|painful|tender|sore)\b.*\b(i|we) (press|push|touch|squeeze|feel)\w*"
    r"|\b(i|we) (press|push|touch|squeeze)\w*\b.*\b(hurt|hurts|pain|paining|painful|tender|sore)\b"
    r"|\b(tell|let) me (know )?(if|when) (it|this|that) (hurts|is (painful|sore|tender))\b"
)


def tender(finding: str) -> bool | None:
    """Whether an examination finding says the part is tender (True), not tender (False), or
    says nothing of it (None). A "tender" after no, not, non- or without in its clause is not."""
    said: bool | None = None
    for m in re.finditer(r"tender", finding, flags=re.I):
        clause = re.split(r"[.;,]", finding[: m.start()])[-1].lower()
        if re.search(r"\b(no|not|non|without)\b", clause):
            said = said or False
        else:
            return True
    return said


# Identity questions answered by a case's fact when it has one on this topic.
IDENTITY_TOPICS = {"identity_work": "soc.occupation", "identity_home": "soc.home"}
ACTION_WORDS = {
    "examine": "examine", "exam": "examine", "examination": "examine", "check": "examine",
    "order": "order", "test": "order", "request": "order", "investigate": "order",
    "diagnose": "diagnose", "diagnosis": "diagnose", "dx": "diagnose",
    "plan": "plan", "treat": "plan", "treatment": "plan", "management": "plan",
    "end": "end", "finish": "end", "submit": "end", "note": "note",
}  # fmt: skip


@dataclass
class Reply:
    kind: str  # opening, question, examine, order, diagnose, plan, end
    utterance: str
    text: str
    source: str  # model, authored, lookup, system
    matched: list[str] = field(default_factory=list)
    guard: dict[str, Any] | None = None
    timings: dict[str, float | int] = field(default_factory=dict)
    ok: bool = True  # False for an action that could not be carried out (unknown exam...)

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "utterance": self.utterance,
            "reply": self.text,
            "source": self.source,
            "matched": self.matched,
            "guard": self.guard,
            "timings": self.timings,
        }


def parse_action(line: str) -> tuple[str, str]:
    """('question'|'examine'|'order'|'diagnose'|'plan'|'note'|'end', argument)."""
    text = line.strip()
    head, _, rest = text.partition(" ")
    kind = ACTION_WORDS.get(head.lower().rstrip(":"))
    if kind == "end" and not rest.strip():
        return "end", ""
    if kind and kind != "end" and rest.strip():
        return kind, rest.strip()
    return "question", text


def render_vitals(case: Case) -> str:
    v = case.vitals
    parts = []
    if v.temperature_c is not None:
        parts.append(f"temperature {v.temperature_c:g} °C")
    if v.heart_rate is not None:
        parts.append(f"heart rate {v.heart_rate}/min")
    if v.resp_rate is not None:
        parts.append(f"respiratory rate {v.resp_rate}/min")
    if v.bp_systolic is not None:
        parts.append(f"BP {v.bp_systolic}/{v.bp_diastolic} mmHg")
    if v.spo2 is not None:
        parts.append(f"SpO2 {v.spo2}% on air")
    if v.weight_kg is not None:
        parts.append(f"weight {v.weight_kg:g} kg")
    if v.height_cm is not None:
        parts.append(f"height {v.height_cm:g} cm")
    if v.muac_mm is not None:
        parts.append(f"MUAC {v.muac_mm} mm")
    if v.glucose_mmol_l is not None:
        parts.append(f"glucose {v.glucose_mmol_l:g} mmol/L")
    text = ", ".join(parts) or "No vital signs recorded"
    if v.note:
        text += f". {v.note}"
    return text[0].upper() + text[1:]


def _turnaround(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:g} h"
    return f"{minutes / 1440:g} days"


class Lookup:
    """Names -> codes for examinations or tests: the case's own, then EdgeTutor's standard codes."""

    def __init__(self, items: list[Any], standard: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        self.items = {i.code: i for i in items}
        self.names: dict[str, str] = {}
        for item in items:
            for name in (item.code, item.name, *item.aliases, *standard.get(item.code, ("", ()))[1]):
                self.names.setdefault(normalise(name), item.code)
        for code, (name, aliases) in standard.items():
            for alias in (code, name, *aliases):
                self.names.setdefault(normalise(alias), code)
        self.standard = standard

    def resolve(self, query: str) -> tuple[str | None, list[str]]:
        """(code, []) if found, else (None, suggestions)."""
        q = normalise(query)
        q = re.sub(r"^(the|a|an|for|his|her|their|my|patient'?s?)\s+", "", q)
        if q in self.names:
            return self.names[q], []
        # "examine the chest for crackles": the longest known name inside the query wins.
        inside = [n for n in self.names if n and len(n) >= 3 and f" {n} " in f" {q} "]
        if inside:
            return self.names[max(inside, key=len)], []
        scored = sorted(
            ((edit_distance(q, n, 3), n) for n in self.names if n),
            key=lambda x: (x[0], x[1]),
        )
        close = [n for d, n in scored if d <= 2]
        if len(close) == 1 or (close and scored[0][0] < scored[1][0]):
            return self.names[close[0]], []
        # Suggest the case's own items first: they are what the author expects.
        words = set(q.split())
        related = [n for n in self.names if words & set(n.split())]
        suggestions = []
        for name in [*close, *related, *[n for _, n in scored[:5]]]:
            label = self.label(self.names[name])
            if label not in suggestions:
                suggestions.append(label)
        return None, suggestions[:4]

    def label(self, code: str) -> str:
        item = self.items.get(code)
        name = item.name if item else self.standard[code][0]
        return f"{name.lower()} ({code})"


_warm_lock = threading.Lock()
_warm_thread: threading.Thread | None = None


def _warm_tables() -> threading.Thread:
    """Load the act patterns and the guard's word lists once, in the background (both are cached;
    a turn that comes first simply loads them itself)."""
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:

            def load() -> None:
                with contextlib.suppress(Exception):  # a broken table is reported by the turn that needs it
                    rules()
                    guard_words()

            _warm_thread = threading.Thread(target=load, name="warm-tables", daemon=True)
            _warm_thread.start()
        return _warm_thread


class Encounter:
    """The state of one encounter with one case. Not thread-safe: one action at a time."""

    def __init__(self, case: Case, backend: Backend | None = None, encoder: Embedder | None = None) -> None:
        self.case = case
        self.backend = backend
        # While the trainee reads the opening: the tables a turn reads are loaded, and the case's
        # stable prompt prefix is made ready, so the first question waits no longer than the rest.
        self._warming = _warm_tables()
        prefill = getattr(backend, "prefill", None)
        if callable(prefill) and case.facts:
            prefill(prefix_key(case), prefix_variants(case))
        self.history = History(case, encoder)
        self.index = self.history.facts
        self.told: set[str] = set()  # facts the patient has said (asked or volunteered)
        self.guard = Guard(case)
        self.exams = Lookup(case.examination, EXAM_CODES)
        self.tests = Lookup(case.investigations, TEST_CODES)
        self.examined: list[str] = []
        self.ordered: list[str] = []
        self.diagnosis: str | None = None
        self.plan: str | None = None
        self.notes: list[str] = []
        self.ended = False
        self.turns: list[Reply] = []

    # -- entry points ---------------------------------------------------------------------
    def opening(self) -> Reply:
        reply = Reply("opening", "", self.case.patient.opening_statement, "authored")
        self.turns.append(reply)
        return reply

    def wait_ready(self) -> None:
        """Block until the background preparation started with the encounter has finished (what
        the trainee's reading of the opening usually hides)."""
        self._warming.join()
        wait = getattr(self.backend, "wait_prefill", None)
        if callable(wait):
            wait()

    def act(self, line: str, on_token: Callable[[str], None] | None = None) -> Reply:
        """Carry out one action. `on_token` receives provisional model text as it streams."""
        if self.ended:
            raise EdgeTutorError("this encounter has ended")
        kind, arg = parse_action(line)
        start = time.perf_counter()
        if kind == "question":
            reply = self._question(arg, on_token)
        elif kind == "examine":
            reply = self._examine(arg)
        elif kind == "order":
            reply = self._order(arg)
        elif kind == "diagnose":
            self.diagnosis = arg
            reply = Reply("diagnose", arg, f"Diagnosis recorded: {arg}", "system")
        elif kind == "plan":
            self.plan = arg if not self.plan else f"{self.plan}; {arg}"
            reply = Reply("plan", arg, f"Plan recorded: {arg}", "system")
        elif kind == "note":
            self.notes.append(arg)
            reply = Reply("note", arg, f"Note kept: {arg}", "system")
        else:
            self.ended = True
            reply = Reply("end", "", "Encounter ended.", "system")
        reply.timings.setdefault("total_ms", round((time.perf_counter() - start) * 1000, 2))
        self.turns.append(reply)
        return reply

    def replay(self, record: dict[str, Any]) -> None:
        """Restore state from a stored turn without calling the model (resuming an attempt)."""
        kind, arg = record["kind"], record["utterance"]
        if kind == "examine" and record["matched"]:
            self.examined += [c for c in record["matched"] if c not in self.examined]
        elif kind == "order" and record["matched"]:
            self.ordered += [c for c in record["matched"] if c not in self.ordered]
        elif kind == "diagnose":
            self.diagnosis = arg
        elif kind == "plan":
            self.plan = arg if not self.plan else f"{self.plan}; {arg}"
        elif kind == "note":
            self.notes.append(arg)
        elif kind == "end":
            self.ended = True
        elif kind == "question":
            self.told.update(record["matched"] or [])
            self.told.update((record.get("guard") or {}).get("told") or [])
        self.turns.append(
            Reply(
                kind,
                arg,
                record["reply"],
                record["source"],
                list(record["matched"] or []),
                record.get("guard"),
            )
        )

    # -- questions ------------------------------------------------------------------------
    def _question(self, text: str, on_token: Callable[[str], None] | None) -> Reply:
        t0 = time.perf_counter()
        turn = classify(text)
        main = turn.main
        dialogue: dict[str, Any] = {"act": main, "acts": turn.acts, "open": turn.open}
        if "plan_explanation" in turn.acts:
            dialogue["plain"] = turn.plain
        if main in IDENTITY:
            return self._identity(turn.acts, text, dialogue, t0)
        if main == "open_invitation":
            return self._invitation(text, dialogue, t0)
        if {"check_understanding", "instruction"} & set(turn.acts) and TEACH_BACK.search(normalise(text)):
            return self._teach_back(text, dialogue, t0)
        if PRESSED.search(normalise(text)):
            pressed = self._pressed(text, dialogue, t0)
            if pressed is not None:
                return pressed
        if main not in (HISTORY, "ice"):
            return self._social(main, text, dialogue, t0)
        question = expand_texting(turn.question or text)
        answer = self.history.answer(question, ice=main == "ice")
        dialogue |= answer.record()
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        if answer.off_topic:
            dialogue["act"] = "off_topic"
            guard = {"decision": "none", "reasons": ["not a history question"]} | dialogue
            return Reply(
                "question", text, reply_for("off_topic", self.case, text), "authored", [], guard, timings
            )
        prefix = reply_for("greeting", self.case, text) + " " if "greeting" in turn.acts else ""
        # "What's your name, and what happened?": the name first, then the history answer.
        named, named_ids = self._identity_parts(turn.acts)
        prefix += "".join(f"{part} " for part in named)
        facts = answer.facts
        self.told.update(f.id for f in facts)
        ids = [*named_ids, *(f.id for f in facts if f.id not in named_ids)]
        if not facts and not answer.defaults:
            guard = {"decision": "none", "reasons": ["no fact answers this"]} | dialogue
            return Reply(
                "question",
                text,
                prefix + self.case.patient.unknown_answer,
                "authored",
                named_ids,
                guard,
                timings,
            )
        authored = " ".join([*(f.answer for f in facts), *answer.defaults])
        if answer.defaults or self.backend is None:
            # Default answers are authored text for a person without the problem: the model never
            # speaks them, so it cannot turn a normal answer into a symptom.
            reason = "default answer" if answer.defaults else "authored-answers mode"
            guard = {"decision": "no-model", "reasons": [reason]} | dialogue
            return Reply("question", text, prefix + authored, "authored", ids, guard, timings)
        draft, stats = self._speak(question, facts, on_token)
        error = stats.pop("error", None)
        cut = stats.pop("cut", None)
        timings.update(stats)
        if draft is None:
            guard = {
                "decision": "reject", "reasons": [str(error or "model error: no reply")], "draft": None
            } | dialogue  # fmt: skip
            return Reply("question", text, prefix + authored, "authored", ids, guard, timings)
        start = time.perf_counter()
        verdict = self.guard.check(draft, facts, question)
        timings["guard_ms"] = round(timings.get("guard_ms", 0.0) + (time.perf_counter() - start) * 1000, 2)
        record = verdict.as_record() | {"draft": draft} | dialogue
        if cut is not None:
            record["cut"] = cut  # the end of the draft dropped while streaming, and why
        if verdict.accepted:
            return Reply("question", text, prefix + draft, "model", ids, record, timings)
        return Reply("question", text, prefix + authored, "authored", ids, record, timings)

    def _social(self, act: str, text: str, dialogue: dict[str, Any], t0: float) -> Reply:
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        guard = {"decision": "none", "reasons": [f"dialogue act: {act}"]} | dialogue
        answer = reply_for(act, self.case, text)
        if act not in ("greeting", "closing") and "greeting" in dialogue["acts"]:
            answer = f"{reply_for('greeting', self.case, text)} {answer}"
        return Reply("question", text, answer, "authored", [], guard, timings)

    def _teach_back(self, text: str, dialogue: dict[str, Any], t0: float) -> Reply:
        """'Tell me back what you will do': the last few things the trainee told the patient to
        do, in their words with I and you turned round; or that nothing was told yet."""
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        told = self._told_plan()[-3:]
        guard = {"decision": "none", "reasons": ["teach-back"], "said_back": len(told)} | dialogue
        if not told:
            return Reply(
                "question",
                text,
                reply_for("teach_back_nothing", self.case, text),
                "authored",
                [],
                guard,
                timings,
            )
        parts = [said_back(t) for t in told]
        said = " ".join([parts[0], *(p[:1].upper() + p[1:] for p in parts[1:])])
        return Reply(
            "question",
            text,
            reply_for("teach_back", self.case, text, said=said),
            "authored",
            [],
            guard,
            timings,
        )

    def _pressed(self, text: str, dialogue: dict[str, Any], t0: float) -> Reply | None:
        """'Does it hurt when I press here?': yes or no from the finding of the part the question
        names, else of the part examined last; None when that finding says nothing of tenderness
        (the question is then answered as history)."""
        code, _ = self.exams.resolve(text)
        if code is None or code not in self.exams.items:
            code = next((c for c in reversed(self.examined) if c in self.exams.items), None)
        if code is None:
            return None
        hurts = tender(self.exams.items[code].finding)
        if hurts is None:
            return None
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        guard = {"decision": "none", "reasons": [f"tenderness from the finding of {code}"]} | dialogue
        answer = reply_for("pressed_hurts" if hurts else "pressed_fine", self.case, text)
        return Reply("question", text, answer, "authored", [], guard, timings)

    def _told_plan(self) -> list[str]:
        """What the trainee has told the patient to do, in order (their plan explanations)."""
        return [
            t.utterance
            for t in self.turns
            if t.kind == "question" and "plan_explanation" in ((t.guard or {}).get("acts") or [])
        ]

    def _identity_parts(self, acts: list[str]) -> tuple[list[str], list[str]]:
        """The answers to every identity question in a turn ("your name, and how old are you?"),
        in order, and the ids of the case's facts among them: a case's fact on the topic if it
        has one (work, home), else its patient data."""
        parts: list[str] = []
        ids: list[str] = []
        for act in dict.fromkeys(a for a in acts if a in IDENTITY):
            topic = IDENTITY_TOPICS.get(act)
            facts = [f for f in self.history.facts_for(topic) if f.id not in ids] if topic else []
            if facts:
                self.told.update(f.id for f in facts)
                ids += [f.id for f in facts]
                parts += [f.answer for f in facts]
            else:
                parts.append(reply_for(act, self.case))
        return list(dict.fromkeys(parts)), ids

    def _identity(self, acts: list[str], text: str, dialogue: dict[str, Any], t0: float) -> Reply:
        """Name, age, home, work (every one the turn asks): see `_identity_parts`."""
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        parts, ids = self._identity_parts(acts)
        if "greeting" in acts:
            parts.insert(0, reply_for("greeting", self.case, text))
        if ids:
            dialogue["topics"] = [t for a in acts if (t := IDENTITY_TOPICS.get(a))]
            guard = {"decision": "no-model", "reasons": ["identity from the case's fact"]} | dialogue
        else:
            guard = {"decision": "none", "reasons": [f"dialogue act: {dialogue['act']}"]} | dialogue
        return Reply("question", text, " ".join(parts), "authored", ids, guard, timings)

    def _invitation(self, text: str, dialogue: dict[str, Any], t0: float) -> Reply:
        """'Tell me more', 'anything else?': the next volunteered fact not yet told, else 'that's
        all'. Nothing said here counts as asked: an open invitation earns no history credit."""
        timings: dict[str, float | int] = {"retrieval_ms": round((time.perf_counter() - t0) * 1000, 2)}
        nxt = next(
            (f for f in self.case.facts if f.disclosure == Disclosure.volunteered and f.id not in self.told),
            None,
        )
        if nxt is None:
            guard = {"decision": "none", "reasons": ["nothing more to volunteer"]} | dialogue
            return Reply(
                "question",
                text,
                reply_for("open_invitation_done", self.case, text),
                "authored",
                [],
                guard,
                timings,
            )
        self.told.add(nxt.id)
        guard = {"decision": "none", "reasons": ["volunteered"], "told": [nxt.id]} | dialogue
        return Reply("question", text, nxt.answer, "authored", [], guard, timings)

    def _speak(
        self, question: str, facts: list[Fact], on_token: Callable[[str], None] | None
    ) -> tuple[str | None, dict[str, Any]]:
        """The model's checked reply (see speak.py), or None and stats["error"] if it failed.

        `on_token` receives only sentences that passed the guard (and empty heartbeats).
        """
        assert self.backend is not None
        self.guard.use_encoder(self.index.encoder, getattr(self.index, "unit_vectors", None))
        try:
            text, stats = speak_checked(
                self.backend, messages(self.case, question, facts), self.guard, facts, question, on_token
            )
        except EdgeTutorError as err:
            return None, {"error": f"model error: {err}"}
        last = getattr(self.backend, "last", None)
        if last is not None:
            stats |= {
                "ttft_ms": round(last.ttft_s * 1000, 1),
                "model_ms": round(last.total_s * 1000, 1),
                "prompt_tokens": last.prompt_tokens,
                "evaluated_tokens": last.evaluated_tokens,
                "generated_tokens": last.generated_tokens,
            }
        return clean_reply(text), stats

    # -- lookups --------------------------------------------------------------------------
    def _examine(self, query: str) -> Reply:
        if normalise(query) in ("vitals", "vital signs", "obs", "observations"):
            code: str | None = "vitals"
            suggestions: list[str] = []
        else:
            code, suggestions = self.exams.resolve(query)
        if code is None:
            return self._unknown("examine", query, suggestions, "examination")
        if code not in self.examined:
            self.examined.append(code)
        if code == "vitals":
            return Reply("examine", query, f"Vital signs: {render_vitals(self.case)}", "lookup", [code])
        item: Finding | None = self.exams.items.get(code)
        if item is None:
            name = EXAM_CODES[code][0]
            return Reply("examine", query, f"{name}: no abnormality found.", "lookup", [code])
        return Reply("examine", query, f"{item.name}: {item.finding}", "lookup", [code])

    def _order(self, query: str) -> Reply:
        code, suggestions = self.tests.resolve(query)
        if code is None:
            return self._unknown("order", query, suggestions, "test")
        if code not in self.ordered:
            self.ordered.append(code)
        item: Investigation | None = self.tests.items.get(code)
        if item is None:
            name = TEST_CODES[code][0]
            return Reply("order", query, f"{name}: not available at this facility.", "lookup", [code])
        if not item.available:
            note = item.unavailable_note or "not available in this setting"
            return Reply("order", query, f"{item.name}: not available here. {note}", "lookup", [code])
        cost = f", cost {item.cost.value}" + (
            f" (about ${item.cost_usd:g})" if item.cost_usd is not None else ""
        )
        text = f"{item.name} (result after {_turnaround(item.turnaround_minutes)}{cost}): {item.result}"
        return Reply("order", query, text, "lookup", [code])

    def _unknown(self, kind: str, query: str, suggestions: list[str], what: str) -> Reply:
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        return Reply(kind, query, f"Unknown {what} '{query}'.{hint}", "system", [], ok=False)


def clean_reply(text: str) -> str:
    """The first line of a model reply, without quotes or a speaker label."""
    return tidy(text.strip().split("\n")[0])
