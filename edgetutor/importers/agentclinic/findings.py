"""Findings and results: whether one is abnormal, and the draft each examination finding or test
is gathered into."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...cases.lint import norm
from .diagnosis import DxNames
from .tables import EXAMINATION, FINDINGS
from .text import cap, clean, full_stop

_ABNORMAL_WORDS = FINDINGS.abnormal_regex
_PATHOLOGY_KEYS = FINDINGS.pathology_regex
_RANGES = FINDINGS.compiled_ranges


def leaf_abnormal(key: str, value: str, adult: bool) -> bool:
    text = clean(value)
    low = text.lower().rstrip(".")
    if re.fullmatch(r"present", low):
        return bool(_PATHOLOGY_KEYS.search(key))
    if low in ("positive", "detected", "reactive"):
        return True
    if adult and not re.search(r"hpf|%", low):  # "WBC 0-5/hpf" is urine, not blood
        k = norm(key.replace("_", " "))
        for rx, lo, hi, unit in _RANGES:
            if rx.match(k) and (m := re.match(r"\s*[<>]?\s*([\d,]+(?:\.\d+)?)", low)):
                number = float(m.group(1).replace(",", ""))
                if unit and unit not in low.replace(" ", ""):
                    break
                if not lo <= number <= hi:
                    return True
                break
    if re.match(r"^[1-4]\+", low) and not re.search(r"reflex|pulse", key, re.I):
        return True  # "Protein: 1+"
    if (m := re.match(r"^\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?\s*/\s*hpf", low)) and int(
        m.group(2) or m.group(1)
    ) > 5:
        return True  # cells per high-power field in urine
    if low == "absent":
        return not re.search(r"dullness|edema|oedema|mass|rash|lesion|murmur", key, re.I)
    if re.search(r"\b[0-4](?:\+)?/5\b", low) and not re.search(r"\b[0-4]/5\b.*murmur", low):
        return True  # muscle power below 5/5
    # Each part of a finding up to its first negation: "clear, no wheezes, rales or rhonchi" is
    # normal; "mild tenderness, no guarding" is not.
    for segment in re.split(r"[.;]|\b(?:but|however|except|although|whereas)\b", low):
        segment = re.sub(r"\bnon-?\w+|\bunremarkable\b", " ", segment)
        segment = re.split(
            r"\b(?:no|not|without|negative for|absence of|free of|nor|rules? out|ruling out)\b",
            segment,
            maxsplit=1,
        )[0]
        for clause in segment.split(","):
            clause = clause.strip()
            if not clause or re.search(r"\babsent$", clause):
                continue  # "shifting dullness absent"
            if _ABNORMAL_WORDS.search(clause):
                return True
    return False


NOTE_TEXT = re.compile(
    r"\bnot indicated\b|\bnot (?:typically )?necessary\b|\bnot mandatory\b|\boptional\b|"
    r"\bcan be considered\b|"
    r"\bcould be considered\b|\bconsider (?:checking|ordering)\b|\bimagine\b|\bexpected to show\b|"
    r"\bno examination details\b",
    re.I,
)
PLACEHOLDER_VALUE = re.compile(
    r"^(?:not provided|not specified|not mentioned|not assessed|data not provided|information not provided|"
    r"n/?a|none provided|unknown|not available|not done|details are not provided.*|"
    r"not specified in this.*)\.?$",
    re.I,
)


def redact(text: str, dx: DxNames) -> str:
    """Drop ", suggestive of BPPV"-style tails that give the diagnosis away in a finding."""
    out = re.sub(
        r",?\s*(?:suggestive of|consistent with|indicative of|indicating|confirming|compatible with)[^.;]*",
        lambda m: "" if dx.named_in(m.group(0)) else m.group(0),
        text,
        flags=re.I,
    )
    return out.strip()


@dataclass
class Draft:
    """One examination finding or test, gathered from one or more source leaves."""

    code: str
    name: str
    labels: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    abnormal: bool = False
    aliases: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "not indicated" remarks
    section: str = ""
    parts: list[tuple[str, str, str]] = field(default_factory=list)  # tests: (source, sub-label, text)

    def add(self, label: str, text: str, abnormal: bool) -> None:
        text = text.strip()
        if not text:
            return
        line = (
            f"{cap(label)}: {text}"
            if label and label.lower() not in EXAMINATION.generic_labels
            else cap(text)
        )
        if line not in self.lines:
            self.lines.append(line)
        self.abnormal = self.abnormal or abnormal

    def text(self) -> str:
        return " ".join(full_stop(line) for line in self.lines)
