"""Reading a management plan: which of the case's phrasings it names, and whether each is planned.

A phrasing found in the plan is *planned* unless a cue around it says otherwise, in the same
clause:
- before it: a negation or refusal ("no", "avoid", "do not give", "stop", "instead of",
  "contraindicated") or history ("allergic to", "failed", "was given", "previously");
- after it: "is contraindicated", "not indicated", "already failed", "was given before",
  "from the chemist", "allergy"...
A cue reaches over a list of the same kind of thing ("avoid ibuprofen, diclofenac and aspirin")
but not past a verb that starts a new action ("stop the syrup and give amoxicillin"), a
connector ("because", "but", "if") or another kind of item ("no chloroquine, AL 4 tabs").
"Do not stop insulin" plans insulin. Every verdict keeps the cue as its evidence.

The plan is also cut into one stretch of words per item named, so that a dose is read as the
dose of the nearest drug (`doses.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..language.wording import (
    HARD_BOUNDARIES,
    SOFT_BOUNDARIES,
    Phrase,
    canonical,
    find_phrase,
    is_word,
    label_cues,
    tokens,
    wording,
)

PRE_WINDOW = 5  # words before an item that a cue can reach from ("do not give any more of")
POST_WINDOW = 6  # words after it ("ergometrine is strictly contraindicated in her")
_NEGATORS = {"not", "never", "no", "don't", "do not", "without"}


def plan_words(text: str) -> list[str]:
    """A phrase's words as the plan reader compares them."""
    return [t for t in canonical(tokens(text)) if is_word(t)]


@dataclass(frozen=True)
class Match:
    owner: str  # "action:<id>", "error:<id>", "dose:<action id>:<drug>" or "drug"
    phrase: str  # the phrasing as the case writes it
    start: int  # word index, inclusive
    end: int  # word index, exclusive
    written: str  # the trainee's words
    scope: str | None  # None when planned; else why not ("negated by 'avoid'")

    @property
    def kind(self) -> str:
        return self.owner.split(":", 1)[0]


@dataclass
class Unit:
    """A stretch of words naming one item (the longest match there)."""

    start: int
    end: int
    kinds: set[str] = field(default_factory=set)


@dataclass
class PlanReading:
    toks: list[str]
    widx: list[int]  # token index of each word
    words: list[str]
    matches: list[Match]
    units: list[Unit]

    def planned(self, owner: str) -> list[Match]:
        return [m for m in self.matches if m.owner == owner and m.scope is None]

    def found(self, owner: str) -> list[Match]:
        return [m for m in self.matches if m.owner == owner]

    def sentence_of(self, m: Match) -> list[str]:
        """The words of the sentence (between hard boundaries) holding a match."""
        lo = m.start
        while lo > 0 and not self._between(lo - 1, lo) & HARD_BOUNDARIES:
            lo -= 1
        hi = m.end
        while hi < len(self.words) and not self._between(hi - 1, hi) & HARD_BOUNDARIES:
            hi += 1
        return self.words[lo:hi]

    def _between(self, a: int, b: int) -> set[str]:
        """Punctuation tokens between word a and word b (a < b)."""
        if a < 0 or b >= len(self.widx):
            return set()
        return set(self.toks[self.widx[a] + 1 : self.widx[b]])

    def stretch(self, unit: Unit) -> tuple[list[str], list[str]]:
        """Tokens that belong to a unit for dose reading: (before it, after it), each cut at the
        neighbouring unit, a hard boundary, or the last list separator between the two."""
        i = self.units.index(unit)
        prev_end = self.units[i - 1].end if i > 0 else None
        next_start = self.units[i + 1].start if i + 1 < len(self.units) else None
        t0 = self.widx[unit.start]
        t1 = self.widx[unit.end - 1] + 1
        # after: up to the next unit or a hard boundary; with a next unit, only up to the last
        # separator before it ("AL 4 tabs bd x3d and paracetamol 1 g": "and" splits)
        stop = self.widx[next_start] if next_start is not None else len(self.toks)
        after = []
        for t in self.toks[t1:stop]:
            if t in HARD_BOUNDARIES:
                break
            after.append(t)
        if next_start is not None and len(after) == stop - t1:
            cut = max((k for k, t in enumerate(after) if _separator(t)), default=None)
            after = after[:cut] if cut is not None else after
        # before: from the previous unit (after its last separator) or the sentence start
        start = self.widx[prev_end - 1] + 1 if prev_end is not None else 0
        before: list[str] = []
        bounded = False
        for t in reversed(self.toks[start:t0]):
            if t in HARD_BOUNDARIES:
                bounded = True  # "...; 3 L crystalloid": the words after the ';' are this item's
                break
            before.insert(0, t)
        if prev_end is not None and not bounded:
            cut = max((k for k, t in enumerate(before) if _separator(t)), default=None)
            before = before[cut + 1 :] if cut is not None else []
        return before, after


def _separator(tok: str) -> bool:
    return tok in {",", "+", "&", "and", "plus", "with", "also"}


def read_plan(text: str | None, owners: dict[str, list[str]], protected: Iterable[str] = ()) -> PlanReading:
    """Find every owner's phrasings in the plan and decide whether each is planned."""
    toks = canonical(tokens(text or ""))
    widx = [i for i, t in enumerate(toks) if is_word(t)]
    words = [toks[i] for i in widx]
    guard = frozenset(
        {w for phrases in owners.values() for p in phrases for w in plan_words(p)}
        | {w for d in wording().drugs for w in d}
        | set(protected)
    )
    raw: list[tuple[str, str, int, int]] = []
    for owner, phrases in owners.items():
        for phrase in phrases:
            pw = plan_words(phrase)
            if not pw:
                continue
            for i in find_phrase(words, tuple(pw), guard):
                raw.append((owner, phrase, i, i + len(pw)))
    for drug in wording().drugs:
        for i in find_phrase(words, drug, guard):
            raw.append(("drug", " ".join(drug), i, i + len(drug)))
    units = _units(raw)
    reading = PlanReading(toks, widx, words, [], units)
    cues = _cue_spans(words)
    longest: dict[int, tuple[int, set[str]]] = {}
    for owner, _, s, e in raw:
        unit = next(u for u in units if u.start <= s and e <= u.end)
        size, holders = longest.get(unit.start, (0, set()))
        if e - s > size:
            longest[unit.start] = (e - s, {owner})
        elif e - s == size:
            holders.add(owner)
    for owner, phrase, s, e in raw:
        unit = next(u for u in units if u.start <= s and e <= u.end)
        size, holders = longest[unit.start]
        if e - s < size and owner not in holders:
            continue  # "insulin" inside "insulin for life" or "insulin bolus" is not the insulin plan
        scope = _scope(reading, unit, cues)
        written = " ".join(words[s:e])
        reading.matches.append(Match(owner, phrase, s, e, written, scope))
    return reading


def _units(raw: list[tuple[str, str, int, int]]) -> list[Unit]:
    """Non-overlapping stretches, longest match first; each knows the kinds of item it names."""
    units: list[Unit] = []
    for _, _, s, e in sorted(raw, key=lambda r: (-(r[3] - r[2]), r[2])):
        if not any(u.start < e and s < u.end for u in units):
            units.append(Unit(s, e))
    units.sort(key=lambda u: u.start)
    for owner, _, s, e in raw:
        for u in units:
            if u.start <= s and e <= u.end:
                kind = owner.split(":", 1)[0]
                u.kinds.add("action" if kind == "near" else kind)
    return units


Cue = tuple[frozenset[str], Phrase, int]


def _cue_spans(words: list[str]) -> dict[str, dict[int, Cue]]:
    """Cues by the index of their first word ('start') and of their last word ('end')."""
    labels = label_cues(
        words,
        ["negation_after", "history_after", "negation_before", "history_before", "positive_verbs",
         "connectors", "coordinators"],
    )  # fmt: skip
    starts: dict[int, Cue] = {}
    ends: dict[int, Cue] = {}
    for i, lab in enumerate(labels):
        if lab and lab[0]:
            kinds, phrase = lab
            starts[i] = (kinds, phrase, i)
            ends[i + len(phrase) - 1] = (kinds, phrase, i)
    return {"start": starts, "end": ends}


def _listed(gap: set[str], a: Unit | None, b: Unit) -> bool:
    """Whether punctuation between two items continues a list: "ibuprofen, diclofenac" or
    "diuretics (furosemide)" do for things to avoid; "stop breastfeeding, ORS" does not."""
    if a is None or not gap <= {",", "(", ")"} or "error" not in b.kinds or "action" in a.kinds:
        return False
    return bool(a.kinds & {"error", "drug"})


def _same_kind(a: Unit, b: Unit) -> bool:
    """Whether two items can share a cue: both things to avoid, both planned actions, or either
    a drug the case does not list (its kind is unknown)."""
    kinds_a, kinds_b = a.kinds - {"drug"}, b.kinds - {"drug"}
    return not kinds_a or not kinds_b or bool(kinds_a & kinds_b)


def _negated_before(words: list[str], at: int) -> bool:
    """Whether a negator sits in the two words before index `at` ("do not stop")."""
    before = words[max(0, at - 2) : at]
    joined = " ".join(before)
    return any(w in _NEGATORS or w.endswith("n't") for w in before) or "do not" in joined


def _scope(r: PlanReading, unit: Unit, cues: dict[str, dict[int, Cue]]) -> str | None:
    w = wording()
    unit_at = {k: u for u in r.units for k in range(u.start, u.end)}
    # Before the item.
    k, count = unit.start - 1, 0
    while k >= 0 and count < PRE_WINDOW:
        gap = r._between(k, k + 1)
        if gap & HARD_BOUNDARIES:
            break
        other = unit_at.get(k)
        if gap & SOFT_BOUNDARIES and not _listed(gap, other, unit):
            break
        if other is not None and other is not unit:
            if not _same_kind(other, unit):
                break
            k = other.start - 1  # a list of the same kind: the cue reaches over it
            continue
        cue = cues["end"].get(k)
        if cue:
            kinds, phrase, first = cue
            said = " ".join(phrase)
            if kinds & {"negation_before", "history_before"}:
                if phrase in w.cues["negative_verbs"] and _negated_before(r.words, first):
                    return None  # "do not stop insulin"
                label = "negated" if "negation_before" in kinds else "history"
                return f"{label} ({said!r} before it)"
            if "positive_verbs" in kinds:
                if _negated_before(r.words, first):
                    return f"negated ({' '.join(r.words[max(0, first - 2) : first + 1])!r} before it)"
                break
            if "connectors" in kinds:
                break
            k, count = first - 1, count + (0 if "coordinators" in kinds else len(phrase))
            continue
        if r.words[k] in _NEGATORS or r.words[k].endswith("n't"):
            return f"negated ({r.words[k]!r} before it)"
        k, count = k - 1, count + 1
    # After the item.
    k, count = unit.end, 0
    while k < len(r.words) and count < POST_WINDOW:
        gap = r._between(k - 1, k)
        if gap & HARD_BOUNDARIES:
            break
        other = unit_at.get(k)
        if gap & SOFT_BOUNDARIES and not _listed(gap, other, unit):
            break
        if other is not None:
            if not _same_kind(other, unit):
                break
            k = other.end
            continue
        cue = cues["start"].get(k)
        if cue:
            kinds, phrase, _ = cue
            said = " ".join(phrase)
            if kinds & {"negation_after", "history_after"}:
                label = "negated" if "negation_after" in kinds else "history"
                return f"{label} ({said!r} after it)"
            if kinds & {"connectors", "positive_verbs", "negation_before"}:
                break
            k, count = k + len(phrase), count + (0 if "coordinators" in kinds else len(phrase))
            continue
        k, count = k + 1, count + 1
    return None


def near_any(r: PlanReading, m: Match, words: Iterable[str]) -> str | None:
    """The first of `words` (phrases) in the same sentence as the match, if any."""
    sentence = r.sentence_of(m)
    for phrase in words:
        pw = tuple(plan_words(phrase))
        if pw and find_phrase(sentence, pw, frozenset()):
            return phrase
    return None
