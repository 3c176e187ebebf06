"""Investigations: AgentClinic's free-text test names mapped onto EdgeTutor's test codes."""

from __future__ import annotations

import re
from typing import Any

from ...cases.codes import TEST_CODES
from ...cases.lint import norm
from ...cases.schema import slug
from .diagnosis import DxNames
from .findings import NOTE_TEXT, PLACEHOLDER_VALUE, Draft, leaf_abnormal, redact
from .report import CaseImport
from .tables import INVESTIGATIONS
from .text import flat_text, human, leaves

_TEST_EXTRA = INVESTIGATIONS.test_names
_LOCAL_TESTS = INVESTIGATIONS.local_tests
_CONTAINERS = INVESTIGATIONS.containers
_SKIP_TESTS = INVESTIGATIONS.skip_tests
_GENERIC_CHILD = INVESTIGATIONS.generic_child


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _sing(text: str) -> str:
    return " ".join(_singular(w) for w in norm(text).split())


def _test_phrases() -> list[tuple[str, str | None]]:
    phrases: list[tuple[str, str | None]] = []
    for code, (name, aliases) in TEST_CODES.items():
        for p in (name, *aliases):
            phrases.append((_sing(p), code))
    phrases += [(_sing(p), extra) for p, extra in _TEST_EXTRA.items()]
    phrases += [(_sing(name), local) for local, (name, _aliases) in _LOCAL_TESTS.items()]
    return phrases


_TEST_PHRASES = _test_phrases()


def map_test(key: str) -> tuple[bool, str | None]:
    """(matched, code) for a free-text test name: the longest known phrase inside it wins."""
    k = f" {_sing(key.replace('_', ' '))} "
    best: tuple[int, str | None] | None = None
    for phrase, code in _TEST_PHRASES:
        if phrase and f" {phrase} " in k and (best is None or len(phrase) > best[0]):
            best = (len(phrase), code)
    if best is None:
        return False, None
    return True, best[1]


def _test_name(code: str, labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    if code in TEST_CODES:
        return TEST_CODES[code][0]
    if code in _LOCAL_TESTS:
        return _LOCAL_TESTS[code][0]
    return labels[0]


def build_investigations(tr: dict[str, Any], dx: DxNames, adult: bool, info: CaseImport) -> list[Draft]:
    drafts: dict[str, Draft] = {}

    def draft_for(code: str, label: str) -> Draft:
        d = drafts.setdefault(code, Draft(code, ""))
        if label not in d.labels:
            d.labels.append(label)
        return d

    def add_test(key: str, value: Any, code: str | None, prefix: str = "") -> None:
        label = human(key)
        if code is None:
            code = f"x.{slug(key.replace('_', ' '))}"[:60].rstrip("-.")
        d = draft_for(code, label)
        d.sources.append(f"{prefix}{key}")
        for path, text in leaves(value):
            sub = " - ".join(human(p) for p in path if human(p).lower() not in _GENERIC_CHILD)
            for p in path:
                if human(p).lower() not in _GENERIC_CHILD and len(p) > 1:
                    d.aliases.append(human(p).lower())
            if NOTE_TEXT.search(text):
                d.notes.append(text)
                continue
            if PLACEHOLDER_VALUE.match(text) or re.match(r"^not specified\b", text, re.I):
                continue
            clean = redact(text, dx)
            if clean != text:
                info.redacted_results.append(f"{prefix}{key}: {text!r}")
            elif hit := dx.named_in(text):
                info.results_naming_diagnosis.append(f"{prefix}{key} ({hit!r})")
            d.parts.append((label, sub, clean or text))
            d.abnormal = d.abnormal or leaf_abnormal(path[-1] if path else key, text, adult)

    def walk(container: str, children: dict[str, Any], prefix: str) -> None:
        mapped = {k: map_test(k) for k in children}
        fbc_siblings = sum(1 for m in mapped.values() if m[1] == "haem.fbc")
        for key, value in children.items():
            matched, code = mapped[key]
            skey = _sing(key.replace("_", " "))
            if skey in ("other", "suggestion", "comment", "note", "optional"):
                # "Other: No other abnormalities detected", "Suggestion: an MRI could be considered"
                info.dropped_placeholder.append(f"Test_Results.{prefix}{key}: {flat_text(value)!r}")
                continue
            if code == "haem.hb" and fbc_siblings:
                code = "haem.fbc"  # a haemoglobin next to the white cells is part of the count
            if not matched and isinstance(value, dict) and skey in {_sing(c) for c in _CONTAINERS}:
                walk(key, value, f"{prefix}{key}.")
                continue
            add_test(key, value, code, prefix)

    for key, value in tr.items():
        skey = _sing(key.replace("_", " "))
        if skey in {_sing(s) for s in _SKIP_TESTS}:
            info.sections_skipped.append(f"Test_Results.{key} (repeats the vital signs)")
            continue
        matched, code = map_test(key)
        if not matched and isinstance(value, dict) and skey in {_sing(c) for c in _CONTAINERS}:
            walk(key, value, f"{key}.")
            continue
        if isinstance(value, dict) and not value:
            info.sections_skipped.append(f"Test_Results.{key} (empty)")
            continue
        add_test(key, value, code)

    out = []
    for code, d in drafts.items():
        # One source: "Hemoglobin: 13 g/dL"; several merged under one code: name each source.
        multi = len({src for src, _, _ in d.parts}) > 1
        for src, sub, text in d.parts:
            label = (f"{src} - {sub}" if sub else src) if multi else sub
            d.add(label, text, False)
        d.name = _test_name(code, d.labels)
        source = ", ".join(d.sources)
        if code in TEST_CODES:
            info.tests_mapped.append(f"{code} <- {source}")
        else:
            info.tests_local.append(f"{code} <- {source}")
        if not d.lines:
            if d.notes:
                d.lines.append("Not indicated here: the source case gives no result for this test.")
            else:
                d.lines.append("No result recorded in the source case.")
            info.tests_without_result.append(f"{code} <- {source}")
            d.abnormal = False
        out.append(d)
    return out


def turnaround_minutes(code: str, name: str) -> int:
    text = f"{code} {name}".lower()
    for pattern, minutes in INVESTIGATIONS.turnaround:
        if re.search(pattern, text):
            return minutes
    return 120


def test_cost(code: str, name: str) -> str:
    text = f"{code} {name}".lower()
    return "high" if re.search(r"img\.ct|img\.mri|\bct\b|\bmri\b", text) else "medium"
