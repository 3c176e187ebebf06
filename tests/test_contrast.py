"""Colour contrast of the hub dashboard (WCAG 2.x AA): text 4.5:1, graphics 3:1.

Every colour is read from the dashboard's own CSS (`dashboard.STYLE`, parsed below) or from the
inline `style=` of the page header as `page()` and `account_bar()` render it, by selector: change
a colour there and these tests measure the new one. Which colour is drawn on which background is
written out here (PAIRS, GRAPHICS), from where the pages place each element; a colour in STYLE that
no pair reads and that is not listed in EXEMPT with a reason fails `test_every_colour_is_checked`,
so a new rule cannot slip past.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgetutor.hub import dashboard, pages
from edgetutor.hub.accounts import Account
from edgetutor.hub.dashboard import STYLE, page
from edgetutor.hub.pages import account_bar

from .contrast import GRAPHIC, RGB, TEXT, blend, hex_of, luminance, parse_hex, ratio

HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")

# -- the CSS ---------------------------------------------------------------------------------------


def parse_css(css: str) -> dict[str, dict[str, str]]:
    """{selector: {property: value}} for the top-level rules of `css` (a selector list is split;
    a later declaration wins). @media blocks are skipped: `test_every_colour_is_checked` fails if
    one of them sets a colour."""
    rules: dict[str, dict[str, str]] = {}
    i = 0
    while (start := css.find("{", i)) != -1:
        prelude = css[i:start].strip()
        if prelude.startswith("@"):
            depth, j = 1, start + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(css[j], 0)
                j += 1
            i = j
            continue
        end = css.index("}", start)
        for selector in prelude.split(","):
            decls = rules.setdefault(" ".join(selector.split()), {})
            for decl in css[start + 1 : end].split(";"):
                prop, _, value = decl.partition(":")
                if value.strip():
                    decls[prop.strip()] = value.strip()
        i = end + 1
    return rules


class Inline(HTMLParser):
    """The inline style of each element of a rendered fragment, by tag."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.styles: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style")
        if style and HEX.search(style):
            assert tag not in self.styles, f"two <{tag}> with an inline colour: name them apart here"
            self.styles[tag] = style


def header_html() -> str:
    """The page header as a signed-in coordinator sees it (the server adds the account bar)."""
    html = page("Cohort progress", [])
    assert f"<style>{STYLE}</style>" in html  # the CSS parsed here is the CSS served
    bar = account_bar(Account(name="amina", role="national", scope=None), "token")
    html = html.replace("</header>", bar + "</header>", 1)
    return html[html.index("<header>") : html.index("</header>")]


def sheet() -> dict[str, dict[str, str]]:
    """STYLE's rules, plus the header's inline styles as `header a[style]` and
    `header button[style]`."""
    rules = parse_css(STYLE)
    for tag, style in Inline(header_html()).styles.items():
        rules[f"header {tag}[style]"] = parse_css("x{" + style + "}")["x"]
    return rules


RULES = sheet()

# -- what is drawn on what -------------------------------------------------------------------------

Ref = tuple[str, str]  # (selector, property)


@dataclass(frozen=True, repr=False)
class Pair:
    """`fg` drawn on `on`: layers from the bottom (the first must be opaque; a later layer with
    no colour, e.g. `background:none`, shows the one below); `opacity` fades fg and the layers
    above the first, as CSS opacity does, over the first."""

    what: str
    fg: Ref
    on: list[Ref]
    opacity: Ref | None = None
    minimum: float = TEXT
    refs: list[Ref] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "refs", [self.fg, *self.on, *([self.opacity] if self.opacity else [])])

    def colours(self) -> tuple[RGB, RGB]:
        base = colour(self.on[0])
        assert base is not None, f"{self.what}: {self.on[0]} is not an opaque colour"
        under = base
        for ref in self.on[1:]:
            under = colour(ref) or under
        fg = colour(self.fg)
        assert fg is not None, f"{self.what}: {self.fg} sets no colour"
        if self.opacity:
            alpha = float(value(self.opacity))
            fg, under = blend(fg, base, alpha), blend(under, base, alpha)
        return fg, under

    @property
    def ratio(self) -> float:
        return ratio(*self.colours())

    def __repr__(self) -> str:
        return self.what


def value(ref: Ref) -> str:
    selector, prop = ref
    assert selector in RULES, f"no rule for {selector!r} in STYLE"
    assert prop in RULES[selector], f"{selector!r} sets no {prop}"
    return RULES[selector][prop]


def colour(ref: Ref) -> RGB | None:
    """The colour `ref` sets (the one in a shorthand such as `border:1px solid #fff`); None for
    `none` or `transparent`."""
    found = HEX.search(value(ref))
    if found is None:
        assert value(ref) in ("none", "transparent"), f"{ref}: {value(ref)!r} is not a colour this test reads"
        return None
    return parse_hex(found.group())


PAGE = ("body", "background")
SECTION = [PAGE, ("section", "background")]
HEADER = [("header", "background")]
FADED = ("header p", "opacity")  # the header's second line: date, version, links, account bar
BODY = ("body", "color")

PAIRS = [
    Pair("text on the page", BODY, [PAGE]),
    Pair("text in a section", BODY, SECTION),
    Pair("text on a card", BODY, [PAGE, (".card", "background")]),
    Pair("table header text", BODY, [*SECTION, ("th", "background")]),
    Pair("header title", ("header", "color"), HEADER),
    Pair("header second line", ("header", "color"), HEADER, FADED),
    Pair("header link", ("header a[style]", "color"), HEADER, FADED),
    Pair(
        "sign-out button",
        ("header button[style]", "color"),
        [*HEADER, ("header button[style]", "background")],
        FADED,
    ),
    Pair("link on the page (drill-down summary line)", ("a", "color"), [PAGE]),
    Pair("link in a section", ("a", "color"), SECTION),
    Pair("filter label", ("form.filters label", "color"), SECTION),
    Pair(
        "filter button", ("form.filters button", "color"), [*SECTION, ("form.filters button", "background")]
    ),
    Pair("CSV download button", ("a.button", "color"), [*SECTION, ("a.button", "background")]),
    Pair("case line under a histogram title", (".case p", "color"), SECTION),
    Pair("count over a histogram bar", (".bar span", "color"), SECTION),
    Pair("histogram axis", (".axis", "color"), SECTION),
    Pair("pass-mark legend", (".legend", "color"), SECTION),
    # every .warn and .muted paragraph is inside a section
    Pair("warning", (".warn", "color"), SECTION),
    Pair("muted note", (".muted", "color"), SECTION),
]

TRACK = [*SECTION, (".meter", "background")]
FILLS = {".meter i": "below half", ".meter i.mid": "half to 70%", ".meter i.ok": "70% and over"}
GRAPHICS = [
    # A fill is as tall as its track: its end meets the track, its top and bottom the section.
    *(
        Pair(f"meter fill ({n}) on its track", (f, "background"), TRACK, minimum=GRAPHIC)
        for f, n in FILLS.items()
    ),
    *(
        Pair(f"meter fill ({n}) on the section", (f, "background"), SECTION, minimum=GRAPHIC)
        for f, n in FILLS.items()
    ),
    Pair("histogram bar", (".bar i", "background"), SECTION, minimum=GRAPHIC),
    Pair("histogram baseline", (".hist", "border-bottom"), SECTION, minimum=GRAPHIC),
    Pair("pass-mark line", (".passmark", "border-left"), SECTION, minimum=GRAPHIC),
    Pair("sign-out button's outline", ("header button[style]", "border"), HEADER, FADED, minimum=GRAPHIC),
]

#: colours in STYLE that no pair measures, and why
EXEMPT: dict[Ref, str] = {
    # Decorative lines between boxes and rows: what they separate is told apart by its text.
    ("section", "border"): "decorative",
    (".card", "border"): "decorative",
    ("th", "border-bottom"): "decorative",
    ("td", "border-bottom"): "decorative",
    (".case", "border"): "decorative",
    # The empty part of a meter: each meter's level is also written as a number beside it.
    (".meter", "background"): "the level is written beside it",
    # The focus ring is 2.1:1 on the white sections and 4.2:1 on the blue header: no one colour
    # reaches 3:1 on both (it needs a two-colour ring, a change of the rule, not of a colour).
    ("a:focus", "outline"): "focus ring, see above",
    ("button:focus", "outline"): "focus ring, see above",
    ("input:focus", "outline"): "focus ring, see above",
    ("select:focus", "outline"): "focus ring, see above",
}


def label(pair: Pair) -> str:
    fg, bg = pair.colours()
    return f"{pair.what}: {hex_of(fg)} on {hex_of(bg)} = {pair.ratio:.2f}:1, needs {pair.minimum}:1"


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.what)
def test_text_reaches_4_5(pair: Pair) -> None:
    assert pair.ratio >= TEXT, label(pair)


@pytest.mark.parametrize("pair", GRAPHICS, ids=lambda p: p.what)
def test_graphics_reach_3(pair: Pair) -> None:
    assert pair.ratio >= GRAPHIC, label(pair)


def test_the_colours_are_read_from_the_css() -> None:
    # Spot checks of the parser and the compositing against values worked out by hand.
    assert colour(BODY) == parse_hex("#1d2733") and colour(PAGE) == parse_hex("#f4f6f8")
    assert colour((".meter i.ok", "background")) != colour((".meter i", "background"))  # a later rule
    assert value(FADED) == ".85"
    faded = next(p for p in PAIRS if p.what == "header second line")
    assert faded.colours() == (blend((255, 255, 255), parse_hex("#1f4e79"), 0.85), parse_hex("#1f4e79"))
    signout = next(p for p in PAIRS if p.what == "sign-out button")
    assert colour(("header button[style]", "background")) is None  # drawn on the header itself
    assert signout.colours()[1] == parse_hex("#1f4e79")
    # and a colour that fails is caught
    dim = parse_css(".x{color:#999}.y{background:#fff}")
    assert ratio(parse_hex(dim[".x"]["color"]), parse_hex(dim[".y"]["background"])) < TEXT


def test_every_colour_is_checked() -> None:
    """Each colour set in STYLE and in the header's inline styles is measured or exempt (why)."""
    read = {ref for pair in PAIRS + GRAPHICS for ref in pair.refs}
    for ref in [*read, *EXEMPT]:
        value(ref)  # a renamed selector fails here, not silently
    set_somewhere = {
        (selector, prop) for selector, decls in RULES.items() for prop, v in decls.items() if HEX.search(v)
    }
    assert set_somewhere - read - EXEMPT.keys() == set(), "add a pair for each, or an EXEMPT reason"
    # every colour in STYLE belongs to a rule the parser read (none inside an @media block)
    parsed = sum(len(HEX.findall(v)) for decls in parse_css(STYLE).values() for v in decls.values())
    rules = re.findall(r"([^{}]+)\{([^{}]*)\}", STYLE)  # every rule, in @media blocks too
    declared = sum(len(HEX.findall(body)) * len(selectors.split(",")) for selectors, body in rules)
    assert parsed == declared


def inline_colours(module: object) -> set[str]:
    """Every `style="..."` with a hex colour in a module's string literals (adjacent literals, as
    Python joins them)."""
    source = Path(str(getattr(module, "__file__", ""))).read_text(encoding="utf-8")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= {s for s in re.findall(r'style="([^"]*)', node.value) if HEX.search(s)}
    return found


def test_inline_colours_are_only_the_headers() -> None:
    """An inline colour elsewhere (not in STYLE, not in the header) would escape these tests."""
    header = set(Inline(header_html()).styles.values())
    assert inline_colours(dashboard) | inline_colours(pages) == header
    assert len(header) == 2


def test_the_wcag_maths() -> None:
    assert ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert ratio(parse_hex("#777"), parse_hex("#fff")) == pytest.approx(4.48, abs=0.005)
    assert ratio(parse_hex("#fff"), parse_hex("#777")) == ratio(parse_hex("#777"), parse_hex("#fff"))
    assert ratio(parse_hex("#1d2733"), parse_hex("#1d2733")) == 1.0
    assert luminance((255, 255, 255)) == pytest.approx(1.0) and luminance((0, 0, 0)) == 0.0
    assert luminance(parse_hex("#808080")) == pytest.approx(0.2159, abs=1e-4)
    assert blend((255, 255, 255), (0, 0, 0), 0.5) == (128, 128, 128)
    assert hex_of(parse_hex("#AbC")) == "#aabbcc"
