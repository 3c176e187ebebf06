"""Diagnosis matching an examiner would sign: exact names first, typos only, never across a
negation or a qualifier that changes the condition.

A trainee's diagnosis line is split into the primary part and the differentials (after `;`,
`ddx`, `vs`, `r/o`...). The primary part is read clause by clause (`,`, `and`, `or`, `/`, `+`):
- a clause that is exactly a name or synonym (after one spelling per word and with hedging
  words such as "suspected" dropped) is that diagnosis;
- otherwise the longest name found inside it wins; a typo is tolerated in words of 5 letters or
  more, but a real word is never a typo of another ("complicated" is not "uncomplicated",
  "NSTEMI" is not "STEMI");
- a primary name found inside a clause does not count when a negation is next to it ("no
  pneumonia", "malaria ruled out"), when a qualifier next to it differs from the qualifier in the
  case's primary name (severe / uncomplicated, latent / active, pulmonary / extrapulmonary,
  STEMI / NSTEMI, some / severe dehydration), or when a longer differential or a listed near
  miss (`not_synonyms`) matches the same words;
- a clause that is a near miss of the primary next to a correct one is hedging: no credit.
Every verdict carries the words that decided it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..cases.schema import Case, NamedDiagnosis
from ..language.wording import Phrase, canonical, find_phrase, is_word, tokens, wording

_SPLIT_DDX = re.compile(
    r";|\bddx\b|\bd/d\b|\bdd\b|\bdifferentials?\b|\bdifferential diagnos[ie]s\b|\bvs\.?|\bversus\b"
    r"|\brule out\b|\br/o\b|\bconsider\b|\bto exclude\b",
    re.I,
)
_CLAUSE_SPLIT = {",", "/", "+", "&", "(", ")", "and", "or", "\n", ";", ":"}
# Words that may sit between a qualifier and the name it qualifies ("severe P. falciparum malaria").
_MODIFIERS = {"acute", "falciparum", "vivax", "new", "onset", "confirmed", "bacteriologically", "smear",
              "positive", "drug", "primary", "atonic", "bacterial", "viral", "disease", "with"}  # fmt: skip


def split_diagnosis(text: str | None) -> tuple[str, str]:
    """(primary, differentials) from 'malaria; ddx typhoid, meningitis'."""
    if not text:
        return "", ""
    parts = _SPLIT_DDX.split(text, maxsplit=1)
    return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def names_of(d: NamedDiagnosis) -> list[str]:
    return [d.name, *d.synonyms]


def canon_words(text: str) -> list[str]:
    return [t for t in canonical(tokens(text), diagnosis=True) if is_word(t)]


def _strip_fillers(words: list[str]) -> list[str]:
    fillers = wording().fillers
    out, i = [], 0
    while i < len(words):
        for n in (3, 2, 1):
            if tuple(words[i : i + n]) in fillers:
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def qualifiers_in(words: list[str]) -> set[tuple[str, str]]:
    """(axis, value) of every qualifier in the words."""
    table = wording().qualifier
    found = set()
    for i in range(len(words)):
        for n in (2, 1):
            hit = table.get(tuple(words[i : i + n]))
            if hit:
                found.add(hit)
                break
    return found


@dataclass(frozen=True)
class Name:
    label: str  # as the case writes it
    words: Phrase  # canonical
    owner: str  # "primary", "not" (a listed near miss) or the differential's name


@dataclass
class Verdict:
    credited: bool
    evidence: str
    named: list[str] = field(default_factory=list)  # differentials named in the primary part


@dataclass
class _Clause:
    text: str
    words: list[str]


class DiagnosisMatcher:
    """Matches free text against one case's primary diagnosis, near misses and differentials."""

    def __init__(
        self,
        primary: NamedDiagnosis | list[str],
        differentials: Iterable[NamedDiagnosis] = (),
        not_synonyms: Iterable[str] | None = None,
        extra_others: Iterable[str] = (),
    ) -> None:
        if isinstance(primary, NamedDiagnosis):
            self.primary_label = primary.name
            primary_names = names_of(primary)
            nots = list(not_synonyms if not_synonyms is not None else primary.not_synonyms)
        else:
            self.primary_label = primary[0] if primary else ""
            primary_names = list(primary)
            nots = list(not_synonyms or [])
        self.names: list[Name] = [Name(n, tuple(canon_words(n)), "primary") for n in primary_names]
        self.names += [Name(n, tuple(canon_words(n)), "not") for n in nots]
        for d in differentials:
            self.names += [Name(n, tuple(canon_words(n)), d.name) for n in names_of(d)]
        self.names += [Name(n, tuple(canon_words(n)), n) for n in extra_others]
        self.names = [n for n in self.names if n.words]
        self.protected = frozenset(w for n in self.names for w in n.words)
        # What the primary name says on each qualifier axis (or the axis' unmarked value).
        name_words = list(self.names[0].words) if self.names and self.names[0].owner == "primary" else []
        self.accepted: dict[str, set[str]] = {}
        for axis, value in qualifiers_in(name_words):
            self.accepted.setdefault(axis, set()).add(value)
        for axis, value in wording().unmarked.items():
            self.accepted.setdefault(axis, {value})

    # -- reading -------------------------------------------------------------------------------
    def clauses(self, text: str) -> list[_Clause]:
        toks = canonical(tokens(text), diagnosis=True)
        groups: list[list[str]] = [[]]
        for t in toks:
            if t in _CLAUSE_SPLIT:
                groups.append([])
            elif is_word(t):
                groups[-1].append(t)
        out: list[_Clause] = []
        quals = wording().qualifier
        for g in groups:
            if not g:
                continue
            only_qualifiers = all((w,) in quals or (w,) in wording().fillers for w in g)
            if only_qualifiers and out:
                out[-1].words += g  # "malaria, uncomplicated"
                out[-1].text += ", " + " ".join(g)
            else:
                out.append(_Clause(" ".join(g), list(g)))
        return out

    def _spans(self, words: list[str]) -> list[tuple[int, int, Name]]:
        spans = []
        for name in self.names:
            for i in find_phrase(words, name.words, self.protected):
                spans.append((i, i + len(name.words), name))
        return spans

    def _best(self, spans: list[tuple[int, int, Name]]) -> tuple[int, int, Name] | None:
        rank = {"not": 2, "primary": 1}
        return max(spans, key=lambda s: (s[1] - s[0], rank.get(s[2].owner, 0)), default=None)

    def _negation(self, words: list[str], i: int, j: int) -> str | None:
        w = wording()
        for n in (3, 2, 1):
            for k in range(max(0, i - 3), i - n + 1):
                if tuple(words[k : k + n]) in w.negation_before:
                    return " ".join(words[k : k + n])
            for k in range(j, min(len(words), j + 3)):
                if tuple(words[k : k + n]) in w.negation_after:
                    return " ".join(words[k : k + n])
        return None

    def _around(self, words: list[str], i: int, j: int) -> list[str]:
        """The words that qualify the span: itself, the qualifiers just before it (over hedging
        words and modifiers) and a run of qualifiers just after it."""
        w = wording()
        before: list[str] = []
        k = i - 1
        while k >= 0 and i - k <= 4:
            word = words[k]
            if (word,) in w.qualifier or (word,) in w.fillers or word in _MODIFIERS:
                before.insert(0, word)
                k -= 1
                continue
            if k >= 1 and tuple(words[k - 1 : k + 1]) in w.qualifier:
                before[:0] = words[k - 1 : k + 1]
                k -= 2
                continue
            break
        after: list[str] = []
        for word in words[j:]:
            if (word,) in w.qualifier or (word,) in w.fillers:
                after.append(word)
            else:
                break
        return before + words[i:j] + after

    def conflict(self, words: list[str]) -> str | None:
        """Why these words are a different condition from the primary (None: they are not)."""
        for axis, value in sorted(qualifiers_in(words)):
            ok = self.accepted.get(axis)
            if ok and value not in ok:
                return f"says {value} ({axis}), the case is {'/'.join(sorted(ok))}"
        return None

    def read_clause(self, clause: _Clause) -> tuple[str, str, Name | None]:
        """(kind, why, name): kind is primary, negated, conflict, other or none."""
        stripped = tuple(_strip_fillers(clause.words))
        for name in self.names:  # exact first
            if stripped == name.words or tuple(clause.words) == name.words:
                if name.owner == "primary":
                    return "primary", f"{clause.text!r} is {name.label!r}", name
                near = name.owner == "not" or any(s[2].owner == "primary" for s in self._spans(clause.words))
                return ("near" if near else "other"), f"{clause.text!r} is {name.label!r}", name
        spans = self._spans(clause.words)
        best = self._best(spans)
        if best is None:
            return "none", "", None
        i, j, name = best
        if name.owner != "primary":
            cue = self._negation(clause.words, i, j)
            if cue:  # "no severe malaria" excludes the near miss: no hedge
                return "negated", f"{clause.text!r} is negated ({cue!r})", name
            near = name.owner == "not" or any(s[2].owner == "primary" for s in spans)
            return ("near" if near else "other"), f"{clause.text!r} names {name.label!r}", name
        cue = self._negation(clause.words, i, j)
        if cue:
            return "negated", f"{clause.text!r} is negated ({cue!r})", name
        why = self.conflict(self._around(clause.words, i, j))
        if why:
            return "conflict", f"{clause.text!r} {why}", name
        return "primary", f"{clause.text!r} names {name.label!r}", name

    def all_negated(self, text: str) -> bool:
        """Whether every clause that names something negates it ("severe malaria excluded")."""
        kinds = [self.read_clause(c)[0] for c in self.clauses(text)]
        named = [k for k in kinds if k != "none"]
        return bool(named) and all(k == "negated" for k in named)

    def split(self, text: str | None) -> tuple[str, str]:
        """(primary, differentials), passing over leading parts that only exclude something:
        "severe malaria excluded; uncomplicated malaria; ddx typhoid"."""
        rest = text or ""
        primary, differentials = split_diagnosis(rest)
        while primary and ";" in rest and self.all_negated(primary):
            rest = rest.split(";", 1)[1]
            primary, differentials = split_diagnosis(rest)
        return primary, differentials

    def primary(self, text: str) -> Verdict:
        """Whether the primary part of a diagnosis line names the primary diagnosis."""
        clauses = self.clauses(text)
        credited: str | None = None
        misses: list[str] = []
        why_not: list[str] = []
        named: list[str] = []
        for clause in clauses:
            kind, why, name = self.read_clause(clause)
            if kind == "primary" and credited is None:
                credited = why
            elif kind in ("conflict", "near"):
                misses.append(why)
            elif kind in ("negated", "other") and why:
                why_not.append(why)
            if name is not None and name.owner not in ("primary", "not"):
                named.append(name.owner)
        if credited and misses:
            return Verdict(False, f"hedged: {credited}, but {misses[0]}", named)
        if credited:
            return Verdict(True, credited, named)
        reasons = misses + why_not
        if reasons:
            return Verdict(False, reasons[0], named)
        shown = text.strip() or "nothing"
        return Verdict(False, f"{shown!r} does not name {self.primary_label!r}", named)

    def differentials_named(self, texts: Iterable[str], differentials: Iterable[NamedDiagnosis]) -> list[str]:
        """Differentials named anywhere in the texts (negated or not: naming one is considering it)."""
        found = []
        for d in differentials:
            phrases = [tuple(canon_words(n)) for n in names_of(d)]
            for text in texts:
                words = [t for t in canonical(tokens(text), diagnosis=True) if is_word(t)]
                if any(p and find_phrase(words, p, self.protected) for p in phrases):
                    found.append(d.name)
                    break
        return found


def diagnosis_matches(given: str, names: list[str], others: list[str] | None = None) -> bool:
    """Whether `given` names the diagnosis whose name and synonyms are `names`; `others` are
    differentials and near misses that win when they match as well or better."""
    matcher = DiagnosisMatcher(list(names), extra_others=others or [])
    return matcher.primary(given).credited


def case_matcher(case: Case) -> DiagnosisMatcher:
    return DiagnosisMatcher(case.diagnosis.primary, case.diagnosis.differentials)
