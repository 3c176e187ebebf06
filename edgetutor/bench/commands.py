"""`edgetutor bench`: thin wrapper; heavy imports stay inside the command."""

from __future__ import annotations

import click

# Kept in step with edgetutor.bench.speed.QUESTIONS (a test checks) without importing it here.
STANDARD_QUESTIONS = 8


@click.command("bench")
@click.option(
    "--model",
    "model",
    default=None,
    metavar="PATH-OR-NAME",
    help="Measure only this model (a GGUF file or a name from `edgetutor models`).",
)
@click.option(
    "--turns",
    type=click.IntRange(1, STANDARD_QUESTIONS),
    default=STANDARD_QUESTIONS,
    show_default=True,
    help="Questions of the standard encounter to ask each model (fewer is quicker, noisier).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, None),
    default=None,
    help="Threads for llama.cpp (default: one per physical core).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document (schema: edgetutor/bench/schema.json)."
)
def bench(model: str | None, turns: int, threads: int | None, as_json: bool) -> None:
    """Measure each available model on this machine: load time, first-token time (first and later
    turns), tokens/s, tokens evaluated per turn and peak memory, through EdgeTutor and through raw
    llama-cpp-python in the same run, and say whether the model is fast enough to talk to.
    Exit 1 if any model could not be measured (after the report)."""
    from ..errors import ModelError
    from .report import format_report, run_bench

    def progress(message: str) -> None:
        click.echo(message, err=True)

    report = run_bench(model, turns, threads, progress=None if as_json else progress)
    if as_json:
        click.echo(report.model_dump_json(indent=1))
    else:
        click.echo(format_report(report))
    failed = [r.name for r in report.models if r.error]
    if failed:
        raise ModelError(
            f"{len(failed)} of {len(report.models)} model(s) could not be measured: {', '.join(failed)}"
        )
