"""What an import did: per record, what was converted, guessed or dropped; and what was skipped."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path


class RecordError(Exception):
    """One record cannot be imported; the message is the reason (the caller names file and line)."""


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of the pack, and why."""

    record: int  # 1-based position among the non-blank lines
    line: int  # line in the JSONL file
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class CaseImport:
    """What happened to one record: counts, and everything that could not be mapped cleanly."""

    record: int  # 1-based position among the records
    line: int  # line in the JSONL file
    case_id: str
    diagnosis: str
    facts: int = 0
    tests_mapped: list[str] = field(default_factory=list)  # "haem.fbc <- Complete_Blood_Count"
    tests_local: list[str] = field(default_factory=list)  # case-local test codes (x.*)
    tests_without_result: list[str] = field(default_factory=list)
    exams_local: list[str] = field(default_factory=list)  # case-local exam codes (exam.*)
    vitals_parsed: list[str] = field(default_factory=list)
    vitals_prose: list[str] = field(default_factory=list)
    sections_skipped: list[str] = field(default_factory=list)
    dropped_diagnosis: list[str] = field(default_factory=list)
    dropped_observation: list[str] = field(default_factory=list)
    dropped_placeholder: list[str] = field(default_factory=list)
    dropped_signs: list[str] = field(default_factory=list)
    redacted_findings: list[str] = field(default_factory=list)
    redacted_results: list[str] = field(default_factory=list)
    results_naming_diagnosis: list[str] = field(default_factory=list)
    guesses: list[str] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)

    def unmapped(self) -> list[str]:
        """One line per thing an educator should look at, most important first."""
        out = [f"lint: {p}" for p in self.lint]
        out += [f"dropped (names the diagnosis): {s}" for s in self.dropped_diagnosis]
        out += [f"test kept as case-local code: {t}" for t in self.tests_local]
        out += [f"test with no result in the source: {t}" for t in self.tests_without_result]
        out += [f"exam kept as case-local code: {e}" for e in self.exams_local]
        out += [f"vital sign given as prose: {v}" for v in self.vitals_prose]
        out += [f"section not used: {s}" for s in self.sections_skipped]
        out += [f"dropped (examiner's observation, not history): {s}" for s in self.dropped_observation]
        out += [f"dropped (placeholder text): {s}" for s in self.dropped_placeholder]
        out += [f"dropped (symptom is an examination sign): {s}" for s in self.dropped_signs]
        out += [f"diagnosis removed from an examination finding: {s}" for s in self.redacted_findings]
        out += [f"diagnosis removed from a test result: {s}" for s in self.redacted_results]
        out += [
            f"test result names the diagnosis (kept: it is the result itself): {s}"
            for s in self.results_naming_diagnosis
        ]
        out += [f"guess: {g}" for g in self.guesses]
        return out


@dataclass
class ImportReport:
    source: Path
    out: Path
    cases: list[CaseImport] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records in the file: imported and skipped."""
        return len(self.cases) + len(self.skipped)

    @property
    def facts_per_case(self) -> list[int]:
        return [c.facts for c in self.cases]

    @property
    def tests_mapped(self) -> int:
        return sum(len(c.tests_mapped) for c in self.cases)

    @property
    def tests_local(self) -> int:
        return sum(len(c.tests_local) for c in self.cases)

    @property
    def vitals_parsed(self) -> int:
        return sum(len(c.vitals_parsed) for c in self.cases)

    @property
    def vitals_prose(self) -> int:
        return sum(len(c.vitals_prose) for c in self.cases)

    @property
    def dropped_for_diagnosis(self) -> int:
        return sum(len(c.dropped_diagnosis) for c in self.cases)

    @property
    def lint_problems(self) -> int:
        return sum(len(c.lint) for c in self.cases)

    def summary(self) -> str:
        facts = self.facts_per_case
        lines = [
            f"Imported {len(self.cases)} AgentClinic cases from {self.source} into {self.out}",
        ]
        if facts:
            lines.append(
                f"  facts per case: min {min(facts)}, median {statistics.median(facts):g}, max {max(facts)}"
            )
        lines += [
            f"  tests: {self.tests_mapped} mapped to standard codes, "
            f"{self.tests_local} kept as case-local codes",
            f"  vital signs: {self.vitals_parsed} parsed as numbers, "
            f"{self.vitals_prose} kept as prose (vitals.note)",
            f"  sentences dropped because they name the diagnosis: {self.dropped_for_diagnosis}",
            f"  lint problems: {self.lint_problems}",
        ]
        if self.skipped:
            lines.append(
                f"Skipped {len(self.skipped)} of {self.records} records (the others are imported; "
                "fix these and import again to add them):"
            )
            lines += [f"  - {s}" for s in self.skipped]
        for case in self.cases:
            issues = case.unmapped()
            if issues:
                # The id hides the diagnosis from trainees; the educator reading this needs it.
                lines.append(f"{case.case_id} ({case.diagnosis}, line {case.line}):")
                lines += [f"  - {issue}" for issue in issues]
        return "\n".join(lines)
