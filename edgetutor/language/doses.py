"""Doses as clinicians write them: amounts, units, frequency and course length, read into numbers.

`parse` reads the words of one drug in a plan ("4 tabs BD x 3/7", "40mg/kg bd 5 days",
"2g IV 12 hourly", "80/480", "0.1 u/kg/hr", "10% dextrose 5 mL/kg"); `parse_unit` reads a unit as
a case file writes it (the case format checks its units with it). Comparing a dose with a case's
accepted regimens is the scorer's job (`edgetutor.scoring.doses`). The unit, frequency and
duration words are data in `doses.yaml` next to this file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from .lexicon import NUMBER_WORDS
from .wording import ScoringDataError, is_word, words_of

DOSES_FILE = Path(__file__).with_name("doses.yaml")


class _DosesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    units: dict[str, tuple[str, float]]
    multipliers: dict[str, float]
    per_kg: list[str]
    per_hour: list[str]
    per_day: list[str]
    frequency: dict[str, list[str]]
    single: list[str]
    duration_units: dict[str, float]
    fraction_days: dict[str, float]
    not_duration_after: list[str]
    course_notations: list[str]
    strength_prefixes: list[str]


@dataclass(frozen=True)
class Tables:
    units: dict[str, tuple[str, float]]
    multipliers: dict[str, float]
    per_kg: frozenset[str]
    per_hour: frozenset[str]
    per_day: frozenset[tuple[str, ...]]
    frequency: dict[tuple[str, ...], float]
    single: frozenset[tuple[str, ...]]
    duration_units: dict[str, float]
    fraction_days: dict[float, float]
    not_duration_after: frozenset[str]
    course_notations: tuple[re.Pattern[str], ...]
    strength_prefixes: frozenset[str]


@lru_cache(maxsize=1)
def tables() -> Tables:
    from ruamel.yaml import YAML

    try:
        data = _DosesFile.model_validate(YAML(typ="safe").load(DOSES_FILE.read_text(encoding="utf-8")))
        notations = tuple(re.compile(p) for p in data.course_notations)
    except (OSError, ValidationError, re.error) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ScoringDataError(f"{DOSES_FILE.name}: {first}") from err
    freq: dict[tuple[str, ...], float] = {}
    for n, phrases in data.frequency.items():
        for p in phrases:
            freq[words_of(p)] = float(n)
    return Tables(
        units=data.units,
        multipliers=data.multipliers,
        per_kg=frozenset(data.per_kg),
        per_hour=frozenset(data.per_hour),
        per_day=frozenset(words_of(p) for p in data.per_day),
        frequency=freq,
        single=frozenset(words_of(p) for p in data.single),
        duration_units=data.duration_units,
        fraction_days={float(k): v for k, v in data.fraction_days.items()},
        not_duration_after=frozenset(data.not_duration_after),
        course_notations=notations,
        strength_prefixes=frozenset(data.strength_prefixes),
    )


@dataclass(frozen=True)
class Unit:
    dim: str  # mass, volume, unit, mmol, tablet, capsule...
    factor: float  # base units per one of it
    per_kg: bool = False
    per: str = "dose"  # dose, hour or day

    def label(self) -> str:
        base = {"mass": "mg", "volume": "mL", "unit": "unit"}.get(self.dim, self.dim)
        return base + ("/kg" if self.per_kg else "") + ("" if self.per == "dose" else f"/{self.per[0]}")


def parse_unit(text: str) -> Unit:
    """A unit as a case writes it: "mg", "mg/kg", "unit/kg/h", "mL/kg", "tablet", "g"."""
    t = tables()
    parts = [p.strip().lower() for p in text.split("/")]
    if not parts or parts[0] not in t.units:
        raise ValueError(f"unknown dose unit {text!r}")
    dim, factor = t.units[parts[0]]
    per_kg, per = False, "dose"
    for p in parts[1:]:
        if p in t.per_kg:
            per_kg = True
        elif p in t.per_hour:
            per = "hour"
        elif (p,) in t.per_day:
            per = "day"
        else:
            raise ValueError(f"unknown dose unit {text!r}")
    return Unit(dim, factor, per_kg, per)


@dataclass
class Amount:
    lo: float
    hi: float
    unit: Unit
    text: str


@dataclass
class Written:
    """What a plan says about one drug's dose."""

    amounts: list[Amount] = field(default_factory=list)
    frequencies: list[float] = field(default_factory=list)
    single: bool = False
    days: list[tuple[float, float]] = field(default_factory=list)
    hours: list[tuple[float, float]] = field(default_factory=list)
    percents: list[float] = field(default_factory=list)
    dose_counts: list[float] = field(default_factory=list)
    then: bool = False  # "... then ...": consecutive phases, whose durations add up


def _number(tok: str) -> float | None:
    if re.fullmatch(r"\d+(?:\.\d+)?", tok):
        return float(tok)
    value = NUMBER_WORDS.get(tok)
    return float(value) if value is not None else None


def _phrase_at(words: list[str], i: int, table: frozenset[tuple[str, ...]] | dict) -> tuple[str, ...] | None:  # type: ignore[type-arg]
    for n in (4, 3, 2, 1):
        key = tuple(words[i : i + n])
        if len(key) == n and key in table:
            return key
    return None


def parse(toks: list[str]) -> Written:
    """Read the dose words given to one drug (tokens with punctuation, as `wording.tokens`)."""
    t = tables()
    out = Written()
    joined = " ".join(toks)
    for pattern in t.course_notations:
        for m in pattern.finditer(joined):
            months = float(m.group(1)) + float(m.group(2))
            out.days.append((months * 30, months * 30))
    words = [x for x in toks if is_word(x) or x in {"/", "-", "%"}]
    out.then = "then" in words
    # A schedule of hours ("at 0, 8, 24, 36, 48 and 60 hours"): that many doses over those days.
    for m in re.finditer(r"\bat ((?:\d+ (?:, |and )?){3,})(?:h|hr|hrs|hours)\b", joined):
        times = [float(x) for x in re.findall(r"\d+", m.group(1))]
        days = float(math.ceil((max(times) + 1) / 24))
        out.dose_counts.append(len(times))
        out.days.append((days, days))
        out.frequencies.append(len(times) / days)
    i = 0
    while i < len(words):
        w = words[i]
        prev = words[i - 1] if i else ""
        freq = _phrase_at(words, i, t.frequency)  # before numbers: "twice" and "once" are numbers too
        if freq:
            out.frequencies.append(t.frequency[freq])
            i += len(freq)
            continue
        single = _phrase_at(words, i, t.single)
        if single:
            out.single = True
            i += len(single)
            continue
        value = _number(w)
        if value is None:
            if w in t.strength_prefixes and i + 1 < len(words) and _number(words[i + 1]) is not None:
                out.percents.append(float(words[i + 1]))  # "D10"
                i += 2
                continue
            if w in ("a", "an", "one") and i + 1 < len(words) and words[i + 1] in ("week", "fortnight"):
                out.days.append((t.duration_units[words[i + 1]],) * 2)
                i += 2
                continue
            i += 1
            continue
        if w.isdigit() is False and not re.fullmatch(r"\d+(?:\.\d+)?", w) and i + 1 < len(words):
            # a number word counts only before a unit or a duration ("four tablets", "three days")
            nxt = words[i + 1]
            if nxt not in t.units and nxt not in t.duration_units and nxt not in ("doses", "times"):
                i += 1
                continue
        j = i + 1
        hi = value
        if j + 1 < len(words) and words[j] in ("-", "to") and _number(words[j + 1]) is not None:
            hi = _number(words[j + 1]) or value
            j += 2
        nxt = words[j] if j < len(words) else ""
        # "3/7", "2/52": a course; "80/480": a combination tablet's strengths (the first counts)
        if nxt == "/" and j + 1 < len(words) and _number(words[j + 1]) is not None:
            denom = _number(words[j + 1]) or 0.0
            if denom in t.fraction_days:
                days = t.fraction_days[denom]
                out.days.append((value * days, hi * days))
                i = j + 2
                continue
            j += 2
            nxt = words[j] if j < len(words) else "mg"
            if nxt not in t.units:
                out.amounts.append(Amount(value, hi, parse_unit("mg"), f"{w}/{words[j - 1]}"))
                i = j
                continue
        if nxt in t.multipliers:
            value, hi = value * t.multipliers[nxt], hi * t.multipliers[nxt]
            j += 1
            nxt = words[j] if j < len(words) else ""
        if nxt == "%":
            out.percents.append(value)
            i = j + 1
            continue
        if nxt in t.units:
            dim, factor = t.units[nxt]
            per_kg, per = False, "dose"
            k = j + 1
            while k < len(words):
                sep = words[k] in ("/", "per", "a", "an", "every")
                word = words[k + 1] if sep and k + 1 < len(words) else words[k]
                step = 2 if sep else 1
                if word in t.per_kg and (sep or word == "kg"):
                    per_kg, k = True, k + step
                elif word in t.per_hour and sep:
                    per, k = "hour", k + step
                elif (word,) in t.per_day and sep:
                    per, k = "day", k + step
                else:
                    break
            # "500 mg x 2 tabs": the strength of a tablet times the number of tablets
            at = k + (1 if k < len(words) and words[k] == "x" else 0)
            count = _number(words[at]) if at < len(words) else None
            tablet = at + 1 < len(words) and t.units.get(words[at + 1], ("", 0.0))[0] == "tablet"
            if dim == "mass" and count and tablet:
                value, hi, k = value * count, hi * count, at + 2
            text = " ".join(words[i:k])
            out.amounts.append(Amount(value, hi, Unit(dim, factor, per_kg, per), text))
            i = k
            continue
        if nxt in t.duration_units and prev not in t.not_duration_after:
            days = t.duration_units[nxt]
            out.days.append((value * days, hi * days))
            i = j + 1
            continue
        if prev == "in" and nxt in ("doses", "divided"):
            out.frequencies.append(value)  # "80 mg/kg/day in 2 divided doses"
            i = j + 1
            continue
        if nxt in ("doses", "dose"):
            out.dose_counts.append(value)
            i = j + 1
            continue
        if nxt in ("times", "x") and j + 1 < len(words):
            rest = words[j + 1 : j + 4]
            if rest[:2] in (["a", "day"], ["per", "day"], ["/", "day"]) or rest[:1] == ["daily"]:
                out.frequencies.append(value)
                i = j + 1
                continue
        if nxt in ("h", "hr", "hrs", "hour", "hours", "hourly", "hrly"):
            if prev in ("every", "q") or nxt in ("hourly", "hrly"):
                out.frequencies.append(24 / value if value else 0)
            elif prev in ("over", "for", "in"):
                out.hours.append((value, hi))
            i = j + 1
            continue
        if prev in ("x", "for") and nxt not in t.units:
            i = j
            continue
        i = j
    return out
