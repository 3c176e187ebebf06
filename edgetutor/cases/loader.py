"""Reading case and pack source files: YAML to validated models, with line numbers for errors."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..errors import CaseFormatError
from .packmeta import PackMeta
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
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}: {self.severity}:{field} {self.message}"


def _safe_yaml() -> YAML:
    # The C parser (ruamel.yaml.clib) is ~5x faster than the pure one; ruamel falls back by itself.
    return YAML(typ="safe")


def parse_yaml_rt(text: str, filename: str) -> Any:
    """Round-trip parse (keeps line numbers). Raises CaseFormatError on a syntax error."""
    try:
        return YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise CaseFormatError(f"{filename}:{line}: YAML syntax error: {err.problem}") from err
    except YAMLError as err:
        raise CaseFormatError(f"{filename}: YAML error: {err}") from err


def to_plain(node: Any) -> Any:
    """ruamel's CommentedMap/Seq to plain dict/list (pydantic validates plain data faster)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node


def line_of(root: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node on `loc` that exists in the YAML tree."""
    node = root
    line: int | None = getattr(getattr(root, "lc", None), "line", None)
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str):
            if part not in node:
                break
            line = node.lc.key(part)[0]
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int):
            if part >= len(node):
                break
            line = node.lc.item(part)[0]
            node = node[part]
        else:
            # pydantic adds tags such as 'function-after[...]' for validators: skip them.
            continue
    return None if line is None else line + 1


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


def validation_problems(err: ValidationError, root: Any, filename: str) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append(Problem(filename, line_of(root, loc), format_loc(loc), msg))
    return problems


def parse_case_text(text: str, filename: str) -> Case:
    """Validate one case file's text. Raises CaseFormatError naming file, line and field."""
    try:
        data = _safe_yaml().load(io.StringIO(text))
    except YAMLError:
        parse_yaml_rt(text, filename)  # re-parse to get a marked error message
        raise
    try:
        return Case.model_validate(data)
    except ValidationError as err:
        root = parse_yaml_rt(text, filename)
        problems = validation_problems(err, root, filename)
        first = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise CaseFormatError(f"{first}{more}") from err


def load_case(path: Path) -> Case:
    """Read and validate a case file. Raises CaseFormatError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFormatError(f"{path}: cannot read case file: {err}") from err
    return parse_case_text(text, str(path))


def parse_pack_meta(text: str, filename: str) -> PackMeta:
    """Validate a pack.yaml. Raises CaseFormatError."""
    root = parse_yaml_rt(text, filename)
    try:
        return PackMeta.model_validate(to_plain(root))
    except ValidationError as err:
        problems = validation_problems(err, root, filename)
        raise CaseFormatError(str(problems[0])) from err
