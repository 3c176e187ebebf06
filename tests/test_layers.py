"""The package's layers, checked: a module imports only its own layer and the layers below it.

The table below is the one in docs/architecture.md. Every `edgetutor` module is read with `ast`
(nothing is imported), every import of another `edgetutor` module is resolved, at module level,
inside a function or under TYPE_CHECKING alike, and checked against the table. Two more rules:
below the entry points no module imports another `edgetutor` module inside a function (such an
import hides a cycle rather than removing it), and module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "edgetutor"

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "plumbing",
        [
            "edgetutor",  # __init__: the version
            "edgetutor.errors",
            "edgetutor.paths",
            "edgetutor.fsutil",
            "edgetutor.portable",
            "edgetutor.textsafe",
            "edgetutor.scriptfile",
        ],
    ),
    ("language", ["edgetutor.language"]),
    ("cases", ["edgetutor.cases"]),
    ("packs", ["edgetutor.packs"]),
    ("patient", ["edgetutor.patient"]),
    ("scoring", ["edgetutor.scoring"]),
    ("authoring", ["edgetutor.cases.lint", "edgetutor.packs.build", "edgetutor.importers"]),
    ("store", ["edgetutor.store"]),
    ("sync", ["edgetutor.sync"]),
    ("measuring", ["edgetutor.bench"]),
    ("service", ["edgetutor.service"]),
    (
        "entry points",
        [
            "edgetutor.cli",
            "edgetutor.__main__",
            "edgetutor.tui",
            "edgetutor.hub",
            "edgetutor.bench.commands",
            "edgetutor.sync.commands",
        ],
    ),
]
ENTRY = len(LAYERS) - 1


def layer_of(module: str) -> int:
    best, level = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    assert level >= 0, f"{module} is in no layer: add it to LAYERS and to docs/architecture.md"
    return level


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    local: bool  # inside a function
    typing_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = source.split(".")
        if not is_package:
            parts.pop()
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    if not base.startswith("edgetutor"):
        return []
    if node.module is None:  # from . import x: x may be a module
        return [f"{base}.{a.name}" for a in node.names]
    return [base]


def imports_of(path: Path) -> list[Import]:
    source = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, local: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.body:
                    visit_one(sub, local, True)
                for sub in child.orelse:
                    visit_one(sub, local, typing_only)
                continue
            visit_one(child, local, typing_only)

    def visit_one(child: ast.AST, local: bool, typing_only: bool) -> None:
        if isinstance(child, ast.ImportFrom):
            for target in _resolve(source, path.name == "__init__.py", child):
                found.append(Import(source, target, child.lineno, local, typing_only))
        elif isinstance(child, ast.Import):
            for a in child.names:
                if a.name.startswith("edgetutor"):
                    found.append(Import(source, a.name, child.lineno, local, typing_only))
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            visit(child, True, typing_only)
        else:
            visit(child, local, typing_only)

    visit(tree, False, False)
    return found


MODULES = sorted(ROOT.rglob("*.py"))
NAMES = {module_name(p) for p in MODULES}
IMPORTS = [i for p in MODULES for i in imports_of(p)]


def _known(target: str) -> str:
    """The module a target names (`edgetutor.store.db.Store` style targets cut to a module)."""
    while target not in NAMES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def test_every_module_is_in_a_layer() -> None:
    for name in NAMES:
        layer_of(name)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{i.source}:{i.line} ({LAYERS[layer_of(i.source)][0]}) imports {i.target}"
        f" ({LAYERS[layer_of(_known(i.target))][0]})"
        for i in IMPORTS
        if layer_of(_known(i.target)) > layer_of(i.source)
    ]
    assert upward == []


def test_patient_and_scoring_sit_side_by_side_in_one_direction() -> None:
    """The scorer may read the patient's constants; the patient never consults the scorer."""
    back = [i for i in IMPORTS if i.source.startswith("edgetutor.patient") and ".scoring" in i.target]
    assert back == []


def test_no_function_local_imports_of_the_package_below_the_entry_points() -> None:
    """Entry points import lazily to start fast; below them a local import only hides a cycle."""
    local = [
        f"{i.source}:{i.line} imports {i.target} inside a function"
        for i in IMPORTS
        if i.local and not i.typing_only and layer_of(i.source) < ENTRY
    ]
    assert local == []


def test_module_level_imports_form_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for i in IMPORTS:
        if not i.local and not i.typing_only:
            target = _known(i.target)
            if target != i.source and not i.source.startswith(target + "."):  # a package's own __init__
                graph.setdefault(i.source, set()).add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The scan itself works: a made-up store module importing the service layer is caught."""
    fake = tmp_path / "edgetutor" / "store" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..service import open_store\n", encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path / "edgetutor"
    try:
        found = imports_of(fake)
    finally:
        ROOT = saved
    assert [(i.source, i.target, i.local) for i in found] == [
        ("edgetutor.store.bad", "edgetutor.service", True)
    ]
    assert layer_of(found[0].target) > layer_of(found[0].source)
