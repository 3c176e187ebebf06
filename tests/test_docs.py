"""Docs cannot rot: every CLI command has help text and appears in the README, the README's tables
are whole and current, and nothing points outside the repository."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import click

from edgetutor.cli import make_cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "edgetutor") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    commands = _commands(make_cli())
    assert len(commands) >= 14
    for name, cmd in commands:
        assert (cmd.help or "").strip(), f"{name} has no help text"
        if not isinstance(cmd, click.Group):
            assert f"`{name}" in README, f"{name} is not documented in README.md"


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:1500]
    assert "scripts/start" in head and "scripts/test" in head
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci


def test_the_command_table_is_one_table() -> None:
    # A blank line inside a markdown table ends it: every row after it renders as a paragraph.
    section = README.split("## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [i for i, line in enumerate(section.splitlines()) if line.startswith("| `edgetutor")]
    assert rows and rows == list(range(rows[0], rows[0] + len(rows)))


def test_the_benchmark_table_is_generated_from_the_committed_result() -> None:
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "benchmarks" / "readme_table.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert README.count(module.START) == 1 and README.count(module.END) == 1
    assert module.main(["--check"]) == 0, "README's benchmark table is stale: run benchmarks/readme_table.py"
    # One benchmark table only: the generated one.
    assert README.count("| what | edgetutor | raw llama-cpp-python | ratio |") == len(
        module.BenchReport.model_validate_json(module.RESULT.read_text(encoding="utf-8")).models
    )


def _repository_text_files() -> list[Path]:
    """The files a clone has: what git tracks (reports, caches and builds the tests leave behind
    are not part of the repository), less binaries."""
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode("utf-8")
        .split("\0")
    )
    binary = {".etpack", ".gguf", ".png", ".svg", ".zip", ".gz", ".jsonl", ".pub", ".key", ".npy"}
    return [ROOT / name for name in sorted(listed) if name and Path(name).suffix not in binary]


def test_nothing_refers_to_files_outside_the_repository() -> None:
    # A user's clone has only the repository: no sibling folders of the project's own machines.
    outside = re.compile(r"\.\./" + "shared|/work/" + r"(?:shared|main|wt-)")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _repository_text_files()
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if outside.search(line)
    ]
    assert hits == []


def test_local_links_in_the_docs_resolve() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to a missing {target}"
