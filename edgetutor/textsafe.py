"""Text from outside (scripts, case files, device names, hub replies) made safe to print.

A terminal obeys escape sequences in what it prints: ESC ] 0 ; ... BEL retitles the window,
others move the cursor or rewrite earlier lines, so a script or a case could forge what a trainee
or a coordinator sees. Everything printed that came from a file or the network goes through
`printable` (several lines) or `one_line` (one line, e.g. an error message).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls (8-bit CSI, OSC...), and the bidirectional
# overrides and isolates that make text display in another order than it reads.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")


def printable(text: str) -> str:
    """`text` without control characters (tabs and newlines kept; CR becomes a newline)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, without control characters, cut at `limit` characters."""
    flat = _SPACES.sub(" ", _CONTROL.sub("", text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
