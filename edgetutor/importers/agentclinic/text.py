"""Small text helpers shared by the importer's modules: cleaning, casing, sentences, leaves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .tables import LANGUAGE


def clean(text: str) -> str:
    return " ".join(str(text).replace("\u2019", "'").replace("\u2018", "'").split())


def cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def full_stop(text: str) -> str:
    text = text.strip()
    return text if not text or text.rstrip("'\")")[-1:] in (".", "!", "?") else text + "."


_PROPER = LANGUAGE.proper_names


def lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or a proper name."""
    first = text.split(" ", 1)[0]
    letters = re.sub(r"[^A-Za-z]", "", first)
    if len(letters) > 1 and letters[1:].islower() and letters.lower() not in _PROPER:
        return text[:1].lower() + text[1:]
    return text


def human(key: str) -> str:
    """`Chest_X-ray` -> `Chest X-ray`, `CBC_with_Differentiation` -> `CBC with differentiation`."""
    words = clean(key.replace("_", " ")).split()
    out = []
    for i, w in enumerate(words):
        if i and len(w) > 1 and w[0].isupper() and w[1:].islower() and w.lower() not in _PROPER:
            w = w.lower()
        out.append(w)
    return " ".join(out)


_ABBREVIATIONS = LANGUAGE.abbreviations


def split_sentences(text: str) -> list[str]:
    """Sentences, not fooled by `C. difficile`, `e.g.` or `5.4 kg`."""
    text = clean(text)
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?]['\")]*(?=\s+[A-Z0-9\"'(])", text):
        before = text[start : m.start()].rsplit(" ", 1)[-1]
        if (len(before) == 1 and before.isupper()) or before.lower() in _ABBREVIATIONS:
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


def leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Flatten nested dicts/lists into (key path, text) leaves; lists become one sentence."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, str(k)))
    elif isinstance(value, list):
        items = [clean(str(x)) for x in value if not isinstance(x, (dict, list)) and clean(str(x))]
        if items:
            yield path, "; ".join(i.rstrip(".") for i in items)
        for x in value:
            if isinstance(x, (dict, list)):
                yield from leaves(x, path)
    elif value is not None and clean(str(value)):
        yield path, clean(str(value))


def flat_text(value: Any) -> str:
    return " ".join(text for _, text in section_texts(value))


def section_texts(value: Any) -> list[tuple[str, str]]:
    """A section's prose: a string, a list of strings, or a dict of them ("Substance_Use": ...)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [("", value)]
    if isinstance(value, list):
        return [
            ("", full_stop(clean(str(x)))) for x in value if not isinstance(x, (dict, list)) and clean(str(x))
        ]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [(k if not label else f"{k}.{label}", text) for label, text in section_texts(v)]
        return out
    return [("", str(value))]


def shorten(text: str, limit: int) -> str:
    t = clean(text).rstrip(".")
    if len(t) <= limit:
        return t
    cut = t[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut
