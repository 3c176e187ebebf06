"""Reading a script of actions for `edgetutor run --script`: any bytes in, text lines or one error.

The whole script is read and checked before an attempt is opened, so a bad script stores nothing.
"""

from __future__ import annotations

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
