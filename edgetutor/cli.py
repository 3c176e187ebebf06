"""The `edgetutor` command: thin wrappers over the core. Each command parses, calls, prints.

Expected failures (EdgeTutorError) become one line on stderr and exit code 1;
set EDGETUTOR_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import EdgeTutorError
from .textsafe import one_line, printable


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeTutorError as err:
            if os.environ.get("EDGETUTOR_DEBUG"):
                raise
            # Messages can quote hostile input: one line, no terminal escapes.
            click.echo(f"Error: {one_line(str(err), 2000)}", err=True)
            sys.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:
            # A failure nothing foresaw is still one line for the user; the traceback is for
            # whoever fixes it.
            if os.environ.get("EDGETUTOR_DEBUG"):
                raise
            click.echo(
                f"Error: unexpected {type(err).__name__}: {one_line(str(err))} "
                "(a bug in EdgeTutor; EDGETUTOR_DEBUG=1 shows where)",
                err=True,
            )
            sys.exit(2)


def make_cli() -> click.Group:
    """Build the command tree (one factory used by the entry point and the tests)."""
    return cli


@click.group(cls=Group, invoke_without_command=True)
@click.version_option(__version__, prog_name="edgetutor")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """EdgeTutor: practise clinical encounters with offline virtual patients.

    With no command, opens the terminal app.
    """
    if ctx.invoked_subcommand is None:
        # No terminal (a pipe, CliRunner, CI): print help rather than start a full-screen app.
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            click.echo(ctx.get_help())
            return
        from .tui.app import make_app

        make_app().run()


# -- keys and trust -------------------------------------------------------------------------
@cli.group()
def keys() -> None:
    """Publisher signing keys."""


@keys.command("generate")
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Folder for the key files."
)
@click.option("--name", default="publisher", show_default=True, help="Base name of the key files.")
def keys_generate(out: Path, name: str) -> None:
    """Create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    from .packs.signing import generate

    private, public, kid = generate(out, name)
    click.echo(f"Key id {kid}\n  private: {private} (keep it secret)\n  public:  {public} (give to devices)")


@cli.group()
def trust() -> None:
    """Which publishers' packs this device accepts."""


@trust.command("add")
@click.argument("pubkey", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Publisher name shown with its packs.")
@click.option(
    "--pack",
    "packs",
    multiple=True,
    metavar="PACK_ID",
    help="Trust the key only for this pack id (repeat for several); default: any pack.",
)
def trust_add(pubkey: Path, name: str, packs: tuple[str, ...]) -> None:
    """Trust the publisher key in PUBKEY (for every pack, or only for the --pack ids)."""
    from .packs.trust import TrustStore

    key = TrustStore().add(pubkey, name, packs or None)
    click.echo(f"Trusted {printable(key.label)} (key {key.key_id}) for {key.scope_text()}")


@trust.command("list")
def trust_list() -> None:
    """List trusted publisher keys."""
    from .packs.trust import TrustStore

    keys_ = TrustStore().keys()
    if not keys_:
        click.echo("No trusted publishers.")
    for key in keys_:
        scope = "" if key.packs is None else f"  (only {key.scope_text()})"
        click.echo(f"{key.key_id}  {one_line(key.label)}{scope}")


@trust.command("remove")
@click.argument("key")
def trust_remove(key: str) -> None:
    """Stop trusting KEY (a key id or name). Its packs stay installed but cannot be played."""
    from .packs.trust import TrustStore

    removed = TrustStore().remove(key)
    click.echo(f"No longer trusted: {removed.label} (key {removed.key_id})")


# -- packs ----------------------------------------------------------------------------------
@cli.group()
def pack() -> None:
    """Build, verify, install and list case packs."""


@pack.command("lint")
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
def pack_lint(src: Path) -> None:
    """Check a pack source folder: every problem with file, line and field."""
    from .cases.lint import lint_source

    cases, problems = lint_source(src)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"{len(cases)} case(s) checked: {errors} error(s), {warnings} warning(s)", err=True)
    if errors:
        sys.exit(1)


@pack.command("build")
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--key", "key", required=True, type=click.Path(path_type=Path), help="Private key file.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Pack file to write.")
def pack_build(src: Path, key: Path, out: Path) -> None:
    """Lint SRC and write a signed pack file."""
    from .packs.build import build_pack

    m = build_pack(src, key, out)
    n_cases = sum(f.path.startswith("cases/") for f in m.files)
    click.echo(
        f"Built {out}: {m.pack_id} v{m.version}, {n_cases} case(s), signed by key {m.publisher_key_id}"
    )


@pack.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
def pack_verify(file: Path) -> None:
    """Check a pack's signature and every file's size and hash (installs nothing)."""
    from .packs.install import PackStore, check_sources
    from .packs.reader import open_pack

    store = PackStore()
    opened = open_pack(file, store.trust)
    opened.read_all()
    check_sources(opened)  # what install parses, verify parses: a pack that verifies installs
    m = opened.manifest
    n_cases = sum(f.path.startswith("cases/") for f in m.files)
    click.echo(f"OK {file.name}: {m.pack_id} v{m.version}, {len(m.files)} file(s), {n_cases} case(s)")
    click.echo(f"  publisher: {opened.publisher.label} (key {m.publisher_key_id})")
    click.echo(f"  created:   {m.created.isoformat()}")
    if m.expires:
        expired = m.expires < store.effective_now().date()
        click.echo(f"  expires:   {m.expires.isoformat()}" + ("  WARNING: EXPIRED" if expired else ""))
    click.echo(f"  trusted for: {opened.publisher.scope_text()}")


@pack.command("install")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--warm",
    is_flag=True,
    help="Also prepare each case's opening for the model in use, so first questions answer fast.",
)
@click.option("--model", "model", default=None, help="With --warm: the model to prepare for.")
def pack_install(path: Path, warm: bool, model: str | None) -> None:
    """Install a pack file, or every pack in a folder (e.g. a USB stick)."""
    from .packs.install import install_path

    failed = 0
    installed: list[str] = []
    for result in install_path(path):
        if isinstance(result, EdgeTutorError):
            failed += 1
            click.echo(f"Error: {one_line(str(result), 2000)}", err=True)
            continue
        verb = {"unchanged": "Already installed"}.get(result.status, result.status.capitalize())
        click.echo(
            f"{verb}: {result.pack_id} v{result.version}, {result.cases} case(s), from {one_line(result.publisher)}"
        )
        for warning in result.warnings:
            click.echo(f"WARNING: {one_line(warning)}", err=True)
        installed.append(result.pack_id)
    for pack_id in installed if warm else []:
        _warm(pack_id, model)
    if failed:
        sys.exit(1)


def _warm(pack_id: str, model: str | None) -> None:
    """Prepare the pack's cases for the model, with a progress bar (a failure is a warning)."""
    from .service.warm import warm_pack

    with click.progressbar(length=1, label=f"Preparing {pack_id}", show_pos=True) as bar:

        def progress(done: int, total: int, _title: str) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        report = warm_pack(pack_id, model, progress)
    if report.skipped:
        click.echo(f"Not prepared: {one_line(report.skipped, 300)}", err=True)
        return
    n = len(report.warmed)
    click.echo(f"Prepared {n} case{'s' if n != 1 else ''} of {pack_id} for {report.model}")
    for problem in report.failed:
        click.echo(f"WARNING: not prepared: {one_line(problem, 300)}", err=True)


@pack.command("list")
def pack_list() -> None:
    """List installed packs."""
    from .packs.install import PackStore

    packs = PackStore().installed()
    if not packs:
        click.echo("No packs installed. Install one with: edgetutor pack install PATH")
    for p in packs:
        exp = f", expires {p.expires}" if p.expires else ""
        click.echo(
            f"{p.pack_id} v{p.version}  {p.cases} case(s)  {one_line(p.title)}\n"
            f"  publisher: {one_line(p.publisher)}{exp}"
        )


@pack.command("remove")
@click.argument("pack_id")
def pack_remove(pack_id: str) -> None:
    """Uninstall the pack PACK_ID."""
    from .packs.install import PackStore

    removed = PackStore().remove(pack_id)
    click.echo(f"Removed {removed.pack_id} v{removed.version}")


@pack.command("import-agentclinic")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="Pack source folder to create."
)
@click.option("--strict", is_flag=True, help="Write nothing if any record has to be skipped.")
def pack_import_agentclinic(file: Path, out: Path, strict: bool) -> None:
    """Convert AgentClinic OSCE cases (JSONL) into a pack source folder.

    Records that cannot be converted are skipped and listed with their line; exit 1 only when
    nothing was imported (or, with --strict, when any record was skipped).
    """
    from .importers.agentclinic import import_agentclinic

    report = import_agentclinic(file, out, strict=strict)
    click.echo(report.summary())


@cli.command("cases")
def cases_cmd() -> None:
    """List the cases of installed packs."""
    from .packs.install import PackStore

    cases = PackStore().cases()
    if not cases:
        click.echo("No cases installed. Install a pack with: edgetutor pack install PATH")
    current = None
    for c in cases:
        if c.pack_id != current:
            current = c.pack_id
            click.echo(f"{c.pack_id} v{c.pack_version}  ({one_line(c.publisher)})")
        click.echo(printable(f"  {c.id:34} {c.title}  [{c.specialty}, {c.difficulty}]  {c.patient}"))


# -- encounters ----------------------------------------------------------------------------
@cli.group("models", invoke_without_command=True)
@click.option(
    "--model",
    "model",
    default=None,
    metavar="PATH-OR-NAME",
    help="A GGUF file or model name to use (overrides EDGETUTOR_MODEL).",
)
@click.pass_context
def models_cmd(ctx: click.Context, model: str | None) -> None:
    """List the GGUF models found (embedded, models/ folders, EDGETUTOR_MODEL), whether each
    qualifies on this device; * marks the one in use. `models qualify` measures one."""
    if ctx.invoked_subcommand is not None:
        return
    from .errors import ModelError
    from .patient.models import discover, format_models, pick
    from .service.qualify import status

    entries = discover(model)
    in_use = pick(entries)
    notes = {e.path: status(e.path).label for e in entries if e.error is None}
    click.echo(format_models(entries, in_use, qualification=notes))
    if in_use is not None and in_use.error:
        raise ModelError(in_use.error)


@models_cmd.command("qualify")
@click.argument("model", required=False, default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON (without its turns).")
@click.option("--case", "cases", multiple=True, help="Only this suite case (repeatable; never qualifies).")
@click.option("--per-case", type=int, default=None, help="Only this many items per case (never qualifies).")
def models_qualify(model: str | None, as_json: bool, cases: tuple[str, ...], per_case: int | None) -> None:
    """Measure MODEL (default: the one in use) on the fixed fidelity suite and a speed run, and
    write its signed qualification record. Exit 1 if it does not qualify."""
    import json

    from .patient.models import select
    from .service.qualify import qualify

    entry = select(model)
    if entry.error:
        from .errors import ModelError

        raise ModelError(entry.error)

    def progress(done: int, total: int) -> None:
        if not as_json and (done % 20 == 0 or done == total):
            click.echo(f"  {done}/{total} suite items", err=True)

    if not as_json:
        click.echo(f"Qualifying {entry.name} ({entry.path})...", err=True)
    record, path = qualify(entry.path, cases_only=list(cases) or None, per_case=per_case, progress=progress)
    if as_json:
        click.echo(json.dumps({k: v for k, v in record.items() if k != "turns"}, indent=1))
    else:
        from .service.qualify import format_record

        click.echo(format_record(record))
        click.echo(f"Record: {path}")
    if not record["qualifies"]:
        sys.exit(1)


@cli.command("run")
@click.argument("case_id")
@click.option(
    "--script",
    "script",
    required=True,
    type=click.File("rb"),
    help="File of actions, one per line ('-' for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a transcript.")
@click.option("--model", "model", default=None, help="Model path or name (default: see edgetutor models).")
@click.option("--no-model", is_flag=True, help="Authored answers only: no language model.")
@click.option(
    "--trainee", default="trainee", show_default=True, help="Trainee name the attempt is recorded under."
)
@click.option("--resume", default=None, help="Continue an unfinished attempt (its id).")
@click.option("--narrative", is_flag=True, help="Add a feedback paragraph by the model (checked; optional).")
def run_cmd(
    case_id: str,
    script: Any,
    as_json: bool,
    model: str | None,
    no_model: bool,
    trainee: str,
    resume: str | None,
    narrative: bool,
) -> None:
    """Play an encounter headlessly from a script of actions and print the transcript.

    Actions: a question in free text; examine <system>; order <test>; note <text>;
    diagnose <text>; plan <text>; end.
    """
    import json

    from .scriptfile import read_script, stream_script
    from .service.session import Session, load_model

    name = getattr(script, "name", "script")
    lines: Iterable[str]
    if name in ("-", "<stdin>"):
        # Piped: read as it arrives, so another program can drive the encounter turn by turn.
        lines = stream_script(script, "standard input")
    else:
        # A file is read and checked whole before an attempt is opened: a bad script stores nothing.
        lines = read_script(script, name)

    def echo(text: str = "", err: bool = False) -> None:
        # Case text and script lines can hold terminal escapes: printed without them.
        click.echo(printable(text), err=err)

    backend, choice = load_model(model, no_model)
    if choice.error and not as_json:
        echo(f"Note: {choice.error}", err=True)
    session = Session.start(case_id, trainee=trainee, backend=backend, model=choice, resume=resume)
    label = {"model": "model", "authored": "authored", "lookup": "lookup", "system": "system"}

    def show(line: str, reply: Any) -> None:
        if as_json:
            return
        who = "Patient" if reply.kind in ("question", "opening") else "Clinic"
        t = reply.timings
        extra = []
        if reply.guard and reply.guard.get("decision") in ("reject",):
            extra.append("guard rejected: " + "; ".join(reply.guard["reasons"]))
        if "ttft_ms" in t:
            extra.append(f"first token {t['ttft_ms']:.0f} ms, evaluated {t.get('evaluated_tokens')} tok")
        extra.append(f"{t.get('total_ms', 0):.0f} ms")
        echo(f"> {line}")
        echo(f"{who}: {reply.text}")
        echo(
            f"  [{label[reply.source]}{', matched ' + ', '.join(reply.matched) if reply.matched else ''}; {'; '.join(extra)}]"
        )

    if not as_json:
        echo(
            f"Case {session.case.id} ({session.entry.pack_id} v{session.entry.pack_version}), attempt {session.attempt.id}"
        )
        echo(f"Model: {choice.name or 'none (authored answers)'}")
        if not resume:
            echo(f"Patient: {session.replies[0].text}\n  [authored]")
    session.play(lines, show)
    scored = session.score() if session.encounter.ended else None
    story = None
    if scored and narrative and backend is not None:
        from .scoring.narrative import narrate

        story = narrate(backend, scored[1])
    if as_json:
        doc = {
            "case": session.case.id,
            "pack": {
                "id": session.entry.pack_id,
                "version": session.entry.pack_version,
                "digest": session.entry.pack_digest,
            },
            "attempt": session.attempt.id,
            "model": choice.name,
            "model_path": choice.path,
            "model_error": choice.error,
            "model_load_s": round(choice.load_s, 3),
            "turns": [r.record() for r in session.encounter.turns],
            "summary": session.summary(),
            "score": scored[0].as_dict() if scored else None,
            "debrief": scored[1] if scored else None,
            "narrative": story,
        }
        echo(_json_text(json.dumps(doc, indent=1, ensure_ascii=False)))
    else:
        from .scoring.debrief import format_debrief
        from .scoring.outcome import plural

        s = session.summary()
        said = {
            "model": "by the model",
            "authored": "from the case",
            "lookup": "looked up",
            "system": "by the app",
        }
        by = ", ".join(f"{n} {said.get(k, k)}" for k, n in sorted(s["answered_by"].items()))
        echo(f"Attempt {session.attempt.id}: {s['status']}, {plural(s['turns'], 'turn')} ({by})")
        if scored:
            echo("\nDebrief\n" + format_debrief(scored[1]))
            if story and story["text"]:
                echo(f"\nTutor's note (written by the model, checked): {story['text']}")
            elif story:
                echo(f"\n(The model's feedback paragraph was dropped: {'; '.join(story['reasons'])})")
        else:
            echo(f"The encounter is not finished: continue it with --resume {session.attempt.id}")


def _json_text(text: str) -> str:
    # json.dumps escapes C0 controls but prints C1 controls (8-bit CSI...) and bidi overrides raw.
    return re.sub("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]", lambda m: f"\\u{ord(m.group()):04x}", text)


@cli.command("progress")
@click.option("--trainee", default=None, help="One trainee (default: everyone on this device).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def progress_cmd(trainee: str | None, as_json: bool) -> None:
    """Attempts over time, strengths and gaps by domain and competency, and cases to do next."""
    import json

    from .service import open_store
    from .service.progress import format_progress, progress_for

    with open_store() as store:
        doc = progress_for(store, store.trainee(trainee) if trainee else None)
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    click.echo(format_progress(doc))


@cli.group()
def audit() -> None:
    """Audits of case content."""


@audit.command("bias")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def audit_bias(target: str, as_json: bool) -> None:
    """Replay encounters on copies of each case with the patient's sex, age band and name swapped;
    report any change in retrieval, scores or debrief items. TARGET: an installed pack or case id,
    a case .yaml file, or a pack source folder. Exit 1 if anything changed."""
    import json

    from .cases.lint import lint_source
    from .cases.loader import load_case
    from .errors import CasePackError
    from .packs.install import PackStore
    from .patient.embed import load_encoder
    from .scoring.audit import audit_case

    path = Path(target)
    if path.is_dir():
        cases, problems = lint_source(path)
        if any(p.severity == "error" for p in problems):
            raise CasePackError(f"{target} has lint errors (run: edgetutor pack lint {target})")
    elif path.is_file():
        cases = [load_case(path)]
    else:
        store = PackStore()
        entries = [c for c in store.cases() if c.pack_id == target] or [store.case(target)]
        cases = [load_case(e.file) for e in entries]
    encoder = load_encoder()
    reports = [audit_case(case, encoder=encoder) for case in cases]
    if as_json:
        click.echo(json.dumps(reports, indent=1))
    else:
        for r in reports:
            fixed = f" (not swapped: {', '.join(r['fixed'])})" if r["fixed"] else ""
            click.echo(
                f"{'clean  ' if r['clean'] else 'CHANGED'} {r['case']}: {len(r['variants'])} swap(s), {r['lines']} actions{fixed}"
            )
            for v in r["variants"]:
                for d in v["differences"]:
                    click.echo(f"    {v['swap']} -> {v['patient']}: {d}")
        changed = sum(not r["clean"] for r in reports)
        click.echo(f"{len(reports)} case(s) audited, {changed} with differences")
    if any(not r["clean"] for r in reports):
        sys.exit(1)


def _attach_commands() -> None:
    # Each of these modules imports only click at load time; the work is imported when run.
    from .bench.commands import bench
    from .hub.commands import hub
    from .sync.commands import results, sync_cmd

    for command in (sync_cmd, results, hub, bench):
        cli.add_command(command)


_attach_commands()


def main() -> None:
    # numpy (sentence embeddings) and llama.cpp share two cores: one BLAS thread keeps both steady.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    make_cli()(prog_name="edgetutor")
