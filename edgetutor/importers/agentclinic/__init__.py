"""Import AgentClinic MedQA OSCE cases (JSONL, MIT) into an EdgeTutor pack source folder.

AgentClinic gives each case as prose written *about* the patient ("The patient reports...") with
keys that drift from record to record. EdgeTutor needs the opposite: small first-person facts the
patient can give one at a time, coded examination findings and tests, and a rubric. This package
does that conversion with plain rules (no model), so the result is reproducible and every guess is
listed in the `ImportReport` for an educator to review.

    report = import_agentclinic(Path("agentclinic_medqa.jsonl"), Path("casepacks/agentclinic"))
    print(report.summary())

A record that cannot be read or converted is skipped and reported with its line and reason; the
rest are imported. Nothing is written when no record imports (or, with `strict`, when any is
skipped); the pack folder appears in one rename.

Modules, in the order a record goes through them: `importer` (read, write), `case` (one record),
`voice` and `patient` (who speaks), `speech` and `negatives` (first-person answers), `sentences`
and `facts` (facts and keywords), `vitals`, `findings`, `examination`, `investigations`,
`rubric`; `text` holds small helpers, `tables` loads the YAML lookup tables beside them.
"""

from .case import PACK_ID, case_id
from .importer import import_agentclinic
from .negatives import denial_items, negative_answer
from .report import CaseImport, ImportReport, SkippedRecord
from .speech import first_person
from .voice import Voice, parse_demographics

__all__ = [
    "PACK_ID",
    "CaseImport",
    "ImportReport",
    "SkippedRecord",
    "Voice",
    "case_id",
    "denial_items",
    "first_person",
    "import_agentclinic",
    "negative_answer",
    "parse_demographics",
]
