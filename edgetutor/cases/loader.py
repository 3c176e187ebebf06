"""Reading case and pack source files: YAML to validated models, with line numbers for errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import CaseFormatError
from ..textsafe import one_line
from .packmeta import PackMeta
from .safeyaml import MAX_YAML_BYTES, YamlDoc, read_yaml
from .schema import Case


@dataclass(frozen=True)
class Problem:
    """One lint finding: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        # Field names and messages can quote the file's text: printed as one line, no escapes.
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {one_line(self.path, 500)}:" if self.path else ""
        return f"{one_line(where, 500)}: {self.severity}:{field} {one_line(self.message, 1000)}"


def parse_yaml(text: str | bytes, filename: str) -> YamlDoc:
    """Plain data with the line of each key and list item, through the checks of `safeyaml`.

    Raises CaseFormatError naming the file and line.
    """
    return read_yaml(text, filename)


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or "-" in part and part.startswith("function")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_problems(err: ValidationError, doc: YamlDoc, filename: str) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append(Problem(filename, doc.line_of(loc), format_loc(loc), msg))
    return problems


def parse_case_text(text: str | bytes, filename: str) -> Case:
    """Validate one case file's text (or bytes). Raises CaseFormatError naming file, line and field."""
    doc = read_yaml(text, filename)
    if not isinstance(doc.data, dict):
        raise CaseFormatError(f"{filename}:1: a case file must be a YAML mapping", file=filename, line=1)
    try:
        return Case.model_validate(doc.data)
    except ValidationError as err:
        problems = validation_problems(err, doc, filename)
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise CaseFormatError(f"{first}{more}") from err


def read_source(path: Path) -> bytes:
    """The bytes of a case file or pack.yaml, refused unread if larger than a YAML file may be.

    Raises CaseFormatError.
    """
    try:
        if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
            raise CaseFormatError(f"{path}: not a regular file", file=str(path), reason="not a regular file")
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise CaseFormatError(f"{path}: cannot read: {err.strerror or err}", file=str(path)) from err
    return data  # decode() refuses it if it is one byte too long


def load_case(path: Path) -> Case:
    """Read and validate a case file. Raises CaseFormatError."""
    return parse_case_text(read_source(path), str(path))


def parse_pack_meta(text: str | bytes, filename: str) -> PackMeta:
    """Validate a pack.yaml. Raises CaseFormatError."""
    doc = read_yaml(text, filename)
    if not isinstance(doc.data, dict):
        raise CaseFormatError(f"{filename}:1: pack.yaml must be a YAML mapping", file=filename, line=1)
    try:
        return PackMeta.model_validate(doc.data)
    except ValidationError as err:
        problems = validation_problems(err, doc, filename)
        raise CaseFormatError(str(problems[0])) from err
