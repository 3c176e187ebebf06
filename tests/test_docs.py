"""Docs cannot rot: every CLI command has help text and appears in the README."""

from __future__ import annotations

from pathlib import Path

import click

from edgetutor.cli import make_cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


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
