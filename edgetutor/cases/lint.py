"""`edgetutor pack lint`: every problem in a pack's sources, with file, field path and line.

Schema errors come from pydantic; the rules here are the ones a schema cannot express:
references between parts of a case, duplicates, and answer leaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import CaseFormatError
from ..scoring.diagnosis import canon_words, case_matcher, names_of
from .loader import Problem, parse_yaml, read_source, validation_problems
from .packmeta import PackMeta
from .safeyaml import YamlDoc
from .schema import Case
from .taxonomy import TaxonomyError, covered_topics, taxonomy

CASES_DIR = "cases"


def norm(text: str) -> str:
    """Lower case, punctuation to spaces, single spaces: how phrases are compared."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _contains_phrase(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def _read_problem(err: CaseFormatError, filename: str) -> Problem:
    return Problem(err.file or filename, err.line, "", err.reason or str(err))


def lint_case_text(text: str | bytes, filename: str) -> tuple[Case | None, list[Problem]]:
    """Parse and check one case file. Returns the case (None if it does not validate) and problems."""
    try:
        doc = parse_yaml(text, filename)
    except CaseFormatError as err:
        return None, [_read_problem(err, filename)]
    if not isinstance(doc.data, dict):
        return None, [Problem(filename, 1, "", "a case file must be a YAML mapping")]
    try:
        case = Case.model_validate(doc.data)
    except ValidationError as err:
        return None, validation_problems(err, doc, filename)
    return case, list(_case_rules(case, doc, filename))


def _case_rules(case: Case, doc: YamlDoc, filename: str) -> Iterator[Problem]:
    def problem(loc: tuple[Any, ...], message: str, severity: str = "error") -> Problem:
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
        return Problem(filename, doc.line_of(loc), path, message, severity)

    # Duplicated ids and codes: scores and rubrics refer to them, so each must be unique.
    for section, key in (
        ("facts", "id"),
        ("examination", "code"),
        ("investigations", "code"),
        ("management", "id"),
    ):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(case, section)):
            value = getattr(item, key)
            if value in seen:
                yield problem((section, i, key), f"duplicate {key} {value!r} (first at [{seen[value]}])")
            else:
                seen[value] = i
    for section in ("items", "critical_errors"):
        seen = {}
        for i, item in enumerate(getattr(case.rubric, section)):
            if item.id in seen:
                yield problem(("rubric", section, i, "id"), f"duplicate id {item.id!r}")
            seen[item.id] = i

    # Aliases must name one exam / one test only, or `examine X` would be ambiguous.
    for section in ("examination", "investigations"):
        owner: dict[str, str] = {}
        for i, item in enumerate(getattr(case, section)):
            for j, alias in enumerate([item.name, *item.aliases]):
                key = norm(alias)
                if key in owner and owner[key] != item.code:
                    loc = (section, i, "aliases", j - 1) if j else (section, i, "name")
                    yield problem(loc, f"{alias!r} also names {owner[key]!r}")
                owner.setdefault(key, item.code)

    facts = {f.id for f in case.facts}
    exams = {e.code for e in case.examination} | {"vitals"}
    tests = {t.code for t in case.investigations}
    actions = {a.id for a in case.management}
    known = {"fact": facts, "exam": exams, "test": tests, "management": actions}
    for i, item in enumerate(case.rubric.items):
        kind, ref = item.target
        if kind in known and ref not in known[kind]:
            yield problem(("rubric", "items", i, kind), f"unknown {kind} {ref!r}")
        if kind == "diagnosis" and ref == "differentials" and not case.diagnosis.differentials:
            yield problem(("rubric", "items", i, kind), "points at differentials but the case lists none")
    items = {it.id for it in case.rubric.items}
    for i, ce in enumerate(case.rubric.critical_errors):
        if ce.item and ce.item not in items:
            yield problem(("rubric", "critical_errors", i, "item"), f"unknown rubric item {ce.item!r}")
    for i, st in enumerate(case.rubric.stewardship):
        if st.test not in tests:
            yield problem(("rubric", "stewardship", i, "test"), f"unknown test {st.test!r}")

    yield from _dose_rules(case, problem)
    yield from _diagnosis_rules(case, problem)

    if not case.management and not case.management_note:
        yield problem(("management",), "no management actions: add some, or say why in management_note")

    # The patient must never be led to the answer: a diagnosis name used as a keyword means
    # "is it malaria?" retrieves a fact and the patient seems to confirm it.
    diagnosis_names = [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]
    for d in case.diagnosis.differentials:
        diagnosis_names += [d.name, *d.synonyms]
    dx = {norm(n): n for n in diagnosis_names}
    for i, fact in enumerate(case.facts):
        for j, kw in enumerate(fact.keywords):
            if norm(kw) in dx:
                yield problem(
                    ("facts", i, "keywords", j), f"keyword {kw!r} is also a diagnosis name ({dx[norm(kw)]!r})"
                )
    primary = [norm(n) for n in [case.diagnosis.primary.name, *case.diagnosis.primary.synonyms]]
    spoken: list[tuple[tuple[Any, ...], str]] = [
        (("patient", "opening_statement"), case.patient.opening_statement)
    ]
    spoken += [(("patient", "unknown_answer"), case.patient.unknown_answer)]
    spoken += [(("patient", "persona", k), v) for k, v in case.patient.persona.model_dump().items()]
    spoken += [(("facts", i, "answer"), f.answer) for i, f in enumerate(case.facts)]
    spoken += [(("topic_answers", i, "answer"), t.answer) for i, t in enumerate(case.topic_answers)]
    for where, text in spoken:
        said = norm(text)
        for name in primary:
            if name and _contains_phrase(said, name):
                yield problem(where, f"the patient names the diagnosis ({name!r})", "warning")

    # Warnings: things that are allowed but usually a slip.
    in_rubric = {it.fact for it in case.rubric.items if it.fact}
    for i, fact in enumerate(case.facts):
        if fact.critical and fact.id not in in_rubric:
            yield problem(
                ("facts", i, "critical"), f"critical fact {fact.id!r} is not in the rubric", "warning"
            )
    for i, test in enumerate(case.investigations):
        if not test.available and not test.unavailable_note:
            yield problem(
                ("investigations", i, "available"), "unavailable test without unavailable_note", "warning"
            )
    if not any(it.diagnosis for it in case.rubric.items):
        yield problem(("rubric", "items"), "no rubric item scores the diagnosis", "warning")
    if not case.competencies:
        yield problem(
            ("competencies",),
            "no competencies: progress and the hub's reports cannot count this case "
            "(choose from edgetutor/cases/competencies.yaml)",
            "warning",
        )
    yield from _topic_rules(case, problem)


def _topic_rules(case: Case, problem: Any) -> Iterator[Problem]:
    """Facts and answers tagged with standard history topics (edgetutor/cases/history_topics.yaml)."""
    try:
        ids = taxonomy().ids
    except TaxonomyError as err:
        yield problem(("facts",), f"cannot check history topics: {err}")
        return
    for i, fact in enumerate(case.facts):
        if not fact.topics:
            yield problem(
                ("facts", i, "topics"),
                f"fact {fact.id!r} has no topics: questions about it are matched only by its own words",
                "warning",
            )
        seen: set[str] = set()
        for j, topic in enumerate(fact.topics):
            if topic not in ids:
                yield problem(("facts", i, "topics", j), f"unknown topic {topic!r} in fact {fact.id!r}")
            if topic in seen:
                yield problem(("facts", i, "topics", j), f"duplicate topic {topic!r} in fact {fact.id!r}")
            seen.add(topic)
    covered = covered_topics(case)
    answered: dict[str, int] = {}
    for i, own in enumerate(case.topic_answers):
        if own.topic not in ids:
            yield problem(("topic_answers", i, "topic"), f"unknown topic {own.topic!r}")
        elif own.topic in answered:
            yield problem(("topic_answers", i, "topic"), f"duplicate answer for topic {own.topic!r}")
        elif own.topic in covered:
            yield problem(
                ("topic_answers", i, "topic"),
                f"topic {own.topic!r} is already answered by fact {covered[own.topic][0]!r}",
            )
        answered.setdefault(own.topic, i)
    for i, item in enumerate(case.rubric.items):
        if item.topic and item.topic not in ids:
            yield problem(("rubric", "items", i, "topic"), f"unknown topic {item.topic!r}")
        elif item.topic and item.topic not in covered and item.topic not in answered:
            yield problem(
                ("rubric", "items", i, "topic"),
                f"the checklist asks for topic {item.topic!r}, which no fact answers and topic_answers "
                "does not override: the patient will give the normal default answer",
                "warning",
            )


def _dose_rules(case: Case, problem: Any) -> Iterator[Problem]:
    """Dose blocks: their critical errors exist and are of kind wrong_dose; per-kg doses need a weight."""
    errors = {ce.id: ce for ce in case.rubric.critical_errors}
    named: set[str] = set()
    for i, action in enumerate(case.management):
        for j, block in enumerate(action.dose):
            loc = ("management", i, "dose", j)
            ref = block.wrong_dose_error
            if ref:
                named.add(ref)
                if ref not in errors:
                    yield problem((*loc, "wrong_dose_error"), f"unknown critical error {ref!r}")
                elif errors[ref].kind != "wrong_dose":
                    yield problem(
                        (*loc, "wrong_dose_error"), f"critical error {ref!r} is not kind wrong_dose"
                    )
            per_kg = any("/kg" in (r.unit or "").replace(" ", "") for g in block.regimens for r in g.dose)
            if per_kg and not case.vitals.weight_kg:
                yield problem((*loc, "regimens"), "a per-kg dose needs vitals.weight_kg")
    for i, ce in enumerate(case.rubric.critical_errors):
        if ce.kind == "wrong_dose" and ce.id not in named:
            yield problem(
                ("rubric", "critical_errors", i, "kind"), "no management dose names this wrong_dose error"
            )


def _diagnosis_rules(case: Case, problem: Any) -> Iterator[Problem]:
    """Warnings where the scorer would credit a near miss as the diagnosis, or refuse a synonym."""
    matcher = case_matcher(case)
    primary = case.diagnosis.primary
    # a synonym whose qualifier contradicts the name, or that is also a differential or near miss
    others = {" ".join(canon_words(n)): n for d in case.diagnosis.differentials for n in names_of(d)}
    others |= {" ".join(canon_words(n)): n for n in primary.not_synonyms}
    for j, name in enumerate(primary.synonyms):
        why = matcher.conflict(canon_words(name))
        clash = others.get(" ".join(canon_words(name)))
        if why or clash:
            reason = why or f"is also listed as {clash!r}"
            yield problem(("diagnosis", "primary", "synonyms", j), f"synonym {name!r} {reason}", "warning")
    near: list[tuple[tuple[Any, ...], str]] = [
        (("diagnosis", "primary", "not_synonyms", j), n) for j, n in enumerate(primary.not_synonyms)
    ]
    for i, d in enumerate(case.diagnosis.differentials):
        near += [(("diagnosis", "differentials", i, "name"), d.name)]
        near += [(("diagnosis", "differentials", i, "synonyms", j), n) for j, n in enumerate(d.synonyms)]
    for loc, name in near:
        verdict = matcher.primary(name)
        if verdict.credited:
            yield problem(
                loc, f"{name!r} would be credited as the primary diagnosis ({verdict.evidence})", "warning"
            )


def lint_source(src: Path) -> tuple[list[Case], list[Problem]]:
    """Check a pack source folder (`pack.yaml` + `cases/*.yaml`). Returns valid cases and problems."""
    problems: list[Problem] = []
    meta_path = src / "pack.yaml"
    if not meta_path.is_file():
        return [], [Problem(str(meta_path), None, "", "missing pack.yaml (id, version, title...)")]
    try:
        meta = parse_yaml(read_source(meta_path), str(meta_path))
        if not isinstance(meta.data, dict):
            problems.append(Problem(str(meta_path), 1, "", "pack.yaml must be a YAML mapping"))
        else:
            PackMeta.model_validate(meta.data)
    except CaseFormatError as err:
        problems.append(_read_problem(err, str(meta_path)))
    except ValidationError as err:
        problems += validation_problems(err, meta, str(meta_path))

    case_files = sorted((src / CASES_DIR).glob("*.yaml")) if (src / CASES_DIR).is_dir() else []
    if not case_files:
        problems.append(Problem(str(src / CASES_DIR), None, "", "no case files (cases/*.yaml)"))
    cases: list[Case] = []
    ids: dict[str, str] = {}
    for path in case_files:
        try:
            data = read_source(path)
        except CaseFormatError as err:
            problems.append(_read_problem(err, str(path)))
            continue
        case, found = lint_case_text(data, str(path))
        problems += found
        if case is None:
            continue
        if case.id in ids:
            problems.append(
                Problem(str(path), 1, "id", f"duplicate case id {case.id!r} (also in {ids[case.id]})")
            )
        ids.setdefault(case.id, str(path))
        if path.stem != case.id:
            problems.append(Problem(str(path), 1, "id", f"file name should be {case.id}.yaml"))
        cases.append(case)
    return cases, problems
