"""Reading a script of actions for `edgetutor run --script`: any bytes in, text lines or one error.

A script file is read and checked whole before an attempt is opened, so a bad script stores
nothing. A script piped on standard input (`--script -`) is read line by line as it arrives, so
that another program can drive an encounter turn by turn; a bad line then ends the run with its
error, after the turns before it were recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .errors import ScriptError
from .textsafe import printable

MAX_SCRIPT_BYTES = 1024 * 1024
# A question or a plan is a few sentences; a longer line is not something a trainee typed.
MAX_LINE_CHARS = 2000


def read_script(stream: BinaryIO, name: str) -> list[str]:
    """The script's lines, without control characters. Raises ScriptError naming file and line."""
    data = stream.read(MAX_SCRIPT_BYTES + 1)
    if not isinstance(data, bytes):
        raise ScriptError(f"{name}: cannot read the script as bytes")
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptError(f"{name}: larger than {MAX_SCRIPT_BYTES // 1024} kB: not a script of actions")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScriptError(f"{name}:1: UTF-16 text: save the script as UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ScriptError(f"{name}:{line}: binary data (a NUL byte): a script is UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ScriptError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}): save the script as UTF-8"
        ) from None
    lines: list[str] = []
    for number, raw in enumerate(text.split("\n"), 1):
        # Escape sequences and other controls are dropped: they would be stored with the attempt
        # and replayed to whoever reads the transcript.
        clean = printable(raw.replace("\t", " ")).replace("\n", " ").strip()
        if len(clean) > MAX_LINE_CHARS:
            raise ScriptError(
                f"{name}:{number}: a line of {len(clean):,} characters (at most {MAX_LINE_CHARS:,})"
            )
        lines.append(clean)
    return lines


def stream_script(stream: BinaryIO, name: str) -> Iterator[str]:
    """The lines of a script as they arrive, each checked as `read_script` checks a file."""
    total = 0
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_CHARS * 4 + 2)
        if not raw:
            return
        number += 1
        total += len(raw)
        if total > MAX_SCRIPT_BYTES:
            raise ScriptError(f"{name}: larger than {MAX_SCRIPT_BYTES // 1024} kB: not a script of actions")
        if number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ScriptError(f"{name}:1: UTF-16 text: save the script as UTF-8")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if b"\x00" in raw:
            raise ScriptError(f"{name}:{number}: binary data (a NUL byte): a script is UTF-8 text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ScriptError(
                f"{name}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x}): save the script as UTF-8"
            ) from None
        clean = printable(text.replace("\t", " ")).replace("\n", " ").strip()
        if len(clean) > MAX_LINE_CHARS or not raw.endswith(b"\n") and len(raw) > MAX_LINE_CHARS * 4:
            raise ScriptError(f"{name}:{number}: a line of over {MAX_LINE_CHARS:,} characters")
        yield clean
