"""The one YAML reader for what publishers and educators write: case files and pack.yaml.

A case arrives from anywhere (a USB stick, a hub, an email), so the YAML is treated as hostile
until proven plain. Before ruamel builds a single object, the text is checked cheaply:

1. size: at most MAX_YAML_BYTES (the largest real case is ~30 kB);
2. encoding: UTF-8 only (a UTF-8 BOM is dropped; UTF-16/32 and other bytes are refused with the
   line of the first bad byte), and no control characters YAML forbids (NUL, ESC...);
3. the event stream (ruamel's C parser, which builds nothing and does not recurse), stopped at
   the first problem: one document only, nesting depth, tags other than the standard scalar and
   collection tags (so `!!python/...` never reaches a constructor), aliases (undefined, recursive,
   used as keys, or expanding to more than MAX_NODES values: a "billion laughs"), keys that are
   not plain scalars, numbers longer than MAX_NUMBER_CHARS (Python refuses to convert ints over
   4,300 digits), non-finite floats and impossible dates.

Only then is the text loaded, by ruamel's C loader, and anything it still raises becomes a
CaseFormatError that names the file and, when known, the line. No caller sees a ruamel, Unicode
or recursion error. The same pass over the events records the line of every key and list item,
which is how problems get their line numbers: ruamel's pure-Python round-trip loader is never
used, as it takes ~0.4 ms per value (17 s for a 500 kB file of short keys) and, like every
parser, time growing with the square of the nesting depth (3,000 levels: 16 s).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
)

from ..errors import CaseFormatError
from ..textsafe import one_line

MAX_YAML_BYTES = 512 * 1024
# Cases nest about 6 levels deep; 32 leaves room and keeps every later recursion shallow.
MAX_DEPTH = 32
# Values in the document once every alias is expanded (a large real case has ~2,500).
MAX_NODES = 50_000
MAX_NUMBER_CHARS = 64

_YAML_TAG = "tag:yaml.org,2002:"
# Explicit tags are rare in cases; only these three construct nothing but text, lists and maps
# (`!!bool 'x'` or `!!int 'x'` make ruamel's constructors fail in ways of their own).
ALLOWED_TAGS = frozenset(_YAML_TAG + t for t in ("str", "seq", "map"))

# Characters YAML does not allow in a stream (YAML 1.2, 5.1): C0 controls but tab, LF and CR;
# DEL; C1 controls but NEL; the non-characters U+FFFE and U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_NUMBERISH = re.compile(r"[-+]?(?:\.?[0-9]|0[xXoObB])[0-9a-fA-F_xXoObB.:eE+-]*")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][-+]?[0-9]+)?")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?"
)


def _fail(filename: str, line: int | None, reason: str) -> CaseFormatError:
    reason = one_line(reason)
    where = f"{filename}:{line}" if line else filename
    return CaseFormatError(f"{where}: {reason}", file=filename, line=line, reason=reason)


def decode(data: bytes | str, filename: str) -> str:
    """The text of a YAML file, or CaseFormatError if it is too large or not UTF-8 text."""
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
    else:
        size = len(data)
    if size > MAX_YAML_BYTES:
        raise _fail(
            filename, None, f"{size:,} bytes, larger than the {MAX_YAML_BYTES // 1024} kB a case file may be"
        )
    if isinstance(data, bytes):
        for bom, name in _BOMS:
            if data.startswith(bom):
                raise _fail(filename, 1, f"{name} text: save the file as UTF-8")
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if len(data) >= 2 and (data[0] == 0 or data[1] == 0):
            raise _fail(filename, 1, "UTF-16 or UTF-32 text (NUL bytes): save the file as UTF-8")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise _fail(
                filename, line, f"not UTF-8 text (byte 0x{data[err.start]:02x}): save the file as UTF-8"
            ) from None
    else:
        text = data[1:] if data.startswith("\ufeff") else data
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            line = text.count("\n", 0, err.start) + 1
            raise _fail(filename, line, "not valid Unicode text (a lone surrogate)") from None
    bad = _FORBIDDEN.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        what = "a NUL byte" if bad.group() == "\x00" else f"control character U+{ord(bad.group()):04X}"
        raise _fail(filename, line, f"{what}: not allowed in YAML text")
    return text


def _check_scalar(value: str, tag: str | None, plain: bool) -> str | None:
    """Why a plain scalar would not load safely, or None."""
    if not plain:
        return None
    text = value.strip()
    if len(text) > MAX_NUMBER_CHARS:
        # Longer text is either a number (refused) or not a number at all: the patterns below
        # are only ever tried on short text, so none of them can backtrack for long.
        if _NUMBERISH.fullmatch(text):
            return f"a number of {len(text):,} characters (at most {MAX_NUMBER_CHARS})"
        return None
    if _NON_FINITE.fullmatch(text):
        return f"{text!r} is not a finite number"
    if (
        ("." in text or "e" in text or "E" in text)
        and _FLOAT.fullmatch(text)
        and any(c.isdigit() for c in text)
    ):
        try:
            if math.isinf(float(text.replace("_", ""))):
                return f"{text!r} is too large a number"
        except ValueError:
            pass
    if plain and tag is None:
        date = _DATE.fullmatch(text)
        if date:
            year, month, day, hour, minute, second = date.groups()
            try:
                dt.date(int(year), int(month), int(day))
                if hour is not None:
                    dt.time(int(hour), int(minute), int(second))
            except ValueError:
                return f"{text!r} is not a real date"
    return None


Path = tuple[Any, ...]


@dataclass
class YamlDoc:
    """A loaded YAML document: plain data, and the line of each key and list item by path."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, loc: Path) -> int | None:
        """The 1-based line of the deepest node on `loc` that the document has (parts that are not
        keys or indexes, such as pydantic's validator tags, are skipped)."""
        path: Path = ()
        line = self.lines.get(path)
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path, line = candidate, self.lines[candidate]
        return line


class _Frame:
    __slots__ = ("anchor", "index", "key", "mapping", "path", "start")

    def __init__(self, mapping: bool, anchor: str | None, start: int, path: Path) -> None:
        self.mapping, self.anchor, self.start, self.path = mapping, anchor, start, path
        self.index = 0
        self.key: str = ""


def scan(text: str, filename: str) -> dict[Path, int]:
    """Check the YAML event stream (module docstring, step 3) and return the line of each key
    and list item by path. Raises CaseFormatError."""
    lines: dict[Path, int] = {}
    stack: list[_Frame] = []
    sizes: dict[str, int] = {}  # anchor -> number of values it stands for
    open_anchors: set[str] = set()
    expanded = 0
    documents = 0
    line: int | None = None
    try:
        for event in YAML(typ="safe").parse(io.StringIO(text)):
            mark = event.start_mark
            line = mark.line + 1 if mark is not None else line
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _fail(filename, line, "a second YAML document ('---'): one document per file")
                continue
            if isinstance(event, CollectionEndEvent):
                frame = stack.pop()
                if frame.anchor is not None:
                    sizes[frame.anchor] = expanded - frame.start
                    open_anchors.discard(frame.anchor)
                continue
            if not isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent):
                continue
            path: Path = ()
            if stack:
                parent = stack[-1]
                if parent.mapping and parent.index % 2 == 0:
                    if not isinstance(event, ScalarEvent):
                        raise _fail(
                            filename,
                            line,
                            "a mapping key must be plain text (not a list, a mapping or an alias)",
                        )
                    parent.key = event.value
                    lines.setdefault((*parent.path, event.value), line or 1)
                elif parent.mapping:
                    path = (*parent.path, parent.key)
                else:
                    path = (*parent.path, parent.index)
                    lines.setdefault(path, line or 1)
                parent.index += 1
            else:
                lines.setdefault(path, line or 1)
            if isinstance(event, AliasEvent):
                name = str(event.anchor)
                if name in open_anchors:
                    raise _fail(filename, line, f"alias *{name} refers to a value that contains it")
                if name not in sizes:
                    raise _fail(filename, line, f"alias *{name} has no anchor &{name} before it")
                expanded += sizes[name]
                if expanded > MAX_NODES:
                    raise _fail(
                        filename, line, f"aliases expand to more than {MAX_NODES:,} values (an alias bomb?)"
                    )
                continue
            tag: str | None = None if event.tag is None else str(event.tag)
            if tag is not None and tag not in ALLOWED_TAGS:
                raise _fail(filename, line, f"tag {tag!r} is not allowed (only plain YAML values)")
            anchor = None if event.anchor is None else str(event.anchor)
            expanded += 1
            if expanded > MAX_NODES:
                raise _fail(filename, line, f"more than {MAX_NODES:,} values in one file")
            if isinstance(event, ScalarEvent):
                plain = event.style in (None, "") and tag is None
                problem = _check_scalar(event.value, tag, plain)
                if problem:
                    raise _fail(filename, line, problem)
                if anchor is not None:
                    sizes[anchor] = 1
                    open_anchors.discard(anchor)
                continue
            if len(stack) >= MAX_DEPTH:
                raise _fail(filename, line, f"nested more than {MAX_DEPTH} levels deep")
            stack.append(_Frame(isinstance(event, MappingStartEvent), anchor, expanded - 1, path))
            if anchor is not None:
                open_anchors.add(anchor)
    except MarkedYAMLError as err:
        raise _marked(err, filename) from None
    except YAMLError as err:
        raise _fail(filename, line, f"YAML error: {err}") from None
    return lines


def _marked(err: MarkedYAMLError, filename: str) -> CaseFormatError:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = err.problem or err.context or "malformed YAML"
    if err.context and err.problem and "duplicate key" not in err.problem:
        problem = f"{err.problem} ({err.context})"
    return _fail(filename, line, f"YAML syntax error: {problem}")


def read_yaml(data: bytes | str, filename: str) -> YamlDoc:
    """Check and load one YAML document (plain data, keys as text) with the line of each key and
    list item. Raises CaseFormatError naming the file and, if known, the line."""
    text = decode(data, filename)
    lines = scan(text, filename)
    try:
        loaded = YAML(typ="safe").load(text)
    except MarkedYAMLError as err:
        raise _marked(err, filename) from None
    except YAMLError as err:
        raise _fail(filename, None, f"YAML error: {err}") from None
    except Exception as err:  # noqa: BLE001
        # What the checks above did not foresee still becomes one line, never a traceback.
        raise _fail(filename, None, f"cannot load the YAML ({type(err).__name__}: {err})") from None
    return YamlDoc(_plain(loaded), lines)


def _plain(node: Any) -> Any:
    """Keys as text, as the schemas expect (`1:` or `true:` as a key is a string there)."""
    if isinstance(node, dict):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
