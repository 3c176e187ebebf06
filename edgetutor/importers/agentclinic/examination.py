"""Examination: AgentClinic's free-form sections mapped onto EdgeTutor's examination codes."""

from __future__ import annotations

import re
from typing import Any

from ...cases.codes import EXAM_CODES
from ...cases.lint import norm
from ...cases.schema import slug
from .diagnosis import DxNames
from .findings import NOTE_TEXT, PLACEHOLDER_VALUE, Draft, leaf_abnormal, redact
from .report import CaseImport
from .tables import EXAMINATION
from .text import clean, human, leaves

_SECTION_SYSTEM = EXAMINATION.section_system
_SYSTEM_RULES = EXAMINATION.system_rules
_LOCAL_EXAMS = EXAMINATION.local_exams
_GENERIC_LABELS = EXAMINATION.generic_labels


def _section_key(key: str) -> str:
    k = clean(key.replace("_", " ").replace("-", " ")).lower()
    k = re.sub(r"\b(examination|exam|system|assessment|findings)$", "", k).strip()
    return k


def build_examination(pe: dict[str, Any], dx: DxNames, adult: bool, info: CaseImport) -> list[Draft]:
    drafts: dict[str, Draft] = {}
    for section, value in pe.items():
        if section == "Vital_Signs":
            continue
        skey = _section_key(section)
        system = _SECTION_SYSTEM.get(skey)
        if system is None:
            system = _guess_system(skey)
        if system is None:
            system = "local"
        section_text = " ".join(t for _, t in leaves(value))
        for path, text in leaves(value):
            if PLACEHOLDER_VALUE.match(text) or NOTE_TEXT.search(text):
                info.dropped_placeholder.append(f"{section}{''.join('.' + p for p in path)}: {text!r}")
                continue
            sys_here, sub_path = system, path
            for i, p in enumerate(path):  # "Neurological": {...} inside a general examination
                inner = _SECTION_SYSTEM.get(_section_key(p))
                if inner and inner not in ("general",) and i < len(path) - 1:
                    sys_here, sub_path = inner, path[i + 1 :]
            code = _exam_code(sys_here, section, sub_path, section_text if sys_here == "msk" else text)
            clean = redact(text, dx)
            if clean != text:
                info.redacted_findings.append(f"{section}: {text!r}")
            label = " - ".join(human(p) for p in sub_path if human(p).lower() not in _GENERIC_LABELS)
            if len(drafts.get(code, Draft(code, "")).sources) and section not in drafts[code].sources:
                label = f"{human(section)}{' - ' + label if label else ''}"
            draft = drafts.setdefault(code, Draft(code, _exam_name(code, section), section=section))
            if section not in draft.sources:
                draft.sources.append(section)
                draft.aliases.append(human(section).lower())
            for p in sub_path:
                if human(p).lower() not in _GENERIC_LABELS:
                    draft.aliases.append(human(p).lower())
            draft.add(label, clean or text, leaf_abnormal(" ".join(path), text, adult))
    out = [d for d in drafts.values() if d.lines]
    for d in out:
        if d.code not in EXAM_CODES:
            info.exams_local.append(f"{d.code} <- {', '.join(d.sources)}")
    return out


def _guess_system(skey: str) -> str | None:
    for word, system in EXAMINATION.system_guesses:
        if word in skey:
            return system
    return None


def _exam_code(system: str, section: str, path: tuple[str, ...], text: str) -> str:
    if system == "local":
        return f"exam.{slug(_section_key(section)) or 'other'}"
    rules, default = _SYSTEM_RULES[system].rules, _SYSTEM_RULES[system].default
    keys = [_section_key(p) for p in reversed(path)]
    for k in keys:
        for pattern, code in rules:
            if re.search(pattern, k):
                return code
    for k in keys:  # the shared catalogue's own aliases ("lungs", "heart", "lymph nodes"...)
        found = _catalogue_exam(k)
        if found and (
            system in ("general", "cardiopulm", "ent") or found.split(".")[0] == _SYSTEM_PREFIX.get(system)
        ):
            return found
    if system == "msk" and re.search(r"\bspine\b|\blumbar\b", text, re.I):
        return "msk.spine"
    if default:
        return default
    return f"exam.{slug(keys[0] if keys else _section_key(section))}"


_SYSTEM_PREFIX = EXAMINATION.system_prefix


def _catalogue_exam(key: str) -> str | None:
    k = norm(key)
    best: tuple[int, str] | None = None
    for code, (name, aliases) in EXAM_CODES.items():
        for phrase in (name, *aliases):
            p = norm(phrase)
            if p and (k == p or f" {p} " in f" {k} ") and (best is None or len(p) > best[0]):
                best = (len(p), code)
    return best[1] if best else None


def _exam_name(code: str, section: str) -> str:
    if code in EXAM_CODES:
        return EXAM_CODES[code][0]
    if code in _LOCAL_EXAMS:
        return _LOCAL_EXAMS[code][0]
    return human(code.split(".", 1)[1].replace("-", " ")).capitalize()
