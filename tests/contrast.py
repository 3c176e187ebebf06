"""WCAG 2.x colour contrast: relative luminance, contrast ratio, and alpha blending.

Used by the dashboard's and the terminal app's contrast tests. The minimums are WCAG 2.x level AA:
4.5:1 for normal text (SC 1.4.3), 3:1 for graphics a reader needs to see (SC 1.4.11).
"""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

#: normal text (WCAG 2.x SC 1.4.3, level AA)
TEXT = 4.5
#: graphical objects and parts of controls (SC 1.4.11); also large text
GRAPHIC = 3.0

_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_hex(value: str) -> RGB:
    """`#fff` or `#1d2733` as (r, g, b), 0-255."""
    m = _HEX.fullmatch(value.strip())
    if not m:
        raise ValueError(f"not a hex colour: {value!r}")
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: RGB) -> float:
    """Relative luminance of an sRGB colour, 0 (black) to 1 (white)."""
    r, g, b = (_channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: RGB, b: RGB) -> float:
    """Contrast ratio of two opaque colours, 1 to 21, whichever is lighter."""
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def blend(top: RGB, bottom: RGB, alpha: float) -> RGB:
    """`top` drawn at `alpha` (opacity) over opaque `bottom`: the colour the reader sees."""
    r, g, b = (round(alpha * t + (1 - alpha) * u) for t, u in zip(top, bottom, strict=True))
    return r, g, b


def hex_of(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)
