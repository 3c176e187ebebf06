"""Sentences and clauses of a reply, and a splitter that finds sentences while a reply streams.

The guard judges a draft one sentence at a time, and the screen shows a sentence only once it is
judged, so the same splitting is used on authored answers, on finished drafts and on a stream.
A sentence ends at `.`, `!` or `?` followed by a space or the end of the text; a decimal point
("37.5") or an abbreviation the patients use ("Dr.", "Mr.") does not end one.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = ("dr", "mr", "mrs", "ms", "st", "no", "vs", "etc", "approx")
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
# Clause breaks inside a sentence: a semicolon, or a comma/space before a contrasting or joining
# conjunction. "It has not stopped, but it has stopped now" is two claims of opposite polarity.
_CLAUSE = re.compile(
    r"\s*;\s*|,?\s+\b(?:but|though|although|yet|whereas)\b\s+|,\s*\b(?:and|so|then)\b\s+"
    # "and" before a new subject starts a new claim ("Mama felt my body and it was not hot"),
    # while "water and porridge" stays whole.
    r"|\s+\band\b\s+(?=(?:i|it|he|she|they|we|you|my|his|her|their|our|there|this|that|the|mama|papa)\b)",
    re.IGNORECASE,
)


def _is_break(text: str, match: re.Match[str]) -> bool:
    before = text[: match.start()].split()
    word = before[-1].lower().strip("\"'(") if before else ""
    return not (match.group().startswith(".") and word in _ABBREVIATIONS and len(match.group()) == 1)


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, in order (an unterminated tail counts as one)."""
    out: list[str] = []
    start = 0
    for match in _END.finditer(text):
        if not _is_break(text, match):
            continue
        piece = text[start : match.end()].strip()
        if piece:
            out.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def split_clauses(sentence: str) -> list[str]:
    """The clauses of one sentence (the sentence itself when it has one), without end marks."""
    body = sentence.strip().rstrip(".!?\"' ")
    parts = [p.strip(" ,") for p in _CLAUSE.split(body)]
    return [p for p in parts if p]


class SentenceStream:
    """Feed streamed pieces; get back each sentence once it is complete.

    A sentence is complete when its end mark is followed by whitespace (or by `finish`), so
    "37." is not cut before "5" arrives.
    """

    def __init__(self) -> None:
        self.text = ""
        self._done = 0  # characters of `text` already handed out

    def feed(self, piece: str) -> list[str]:
        self.text += piece
        out: list[str] = []
        for match in _END.finditer(self.text, self._done):
            end = match.end()
            if end >= len(self.text):  # not followed by anything yet: may continue ("37.5")
                break
            if not _is_break(self.text, match):
                continue
            sentence = self.text[self._done : end].strip()
            self._done = end
            if sentence:
                out.append(sentence)
        return out

    def finish(self) -> list[str]:
        """The rest of the text as a last sentence (if any)."""
        rest = self.text[self._done :].strip()
        self._done = len(self.text)
        return [rest] if rest else []


def answer_units(answer: str) -> list[str]:
    """What a reply's clause may be compared with: the clauses of an authored answer's sentences.

    A sentence of several clauses is not a unit itself: "No fever, but my head hurts" holds a no
    and a yes, and as a whole it would lend its "no" to "my head hurts".
    """
    return [c for sentence in split_sentences(answer) for c in (split_clauses(sentence) or [sentence])]
