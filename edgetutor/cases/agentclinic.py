"""Import AgentClinic MedQA OSCE cases (JSONL, MIT) into an EdgeTutor pack source folder.

AgentClinic gives each case as prose written *about* the patient ("The patient reports...") with
keys that drift from record to record. EdgeTutor needs the opposite: small first-person facts the
patient can give one at a time, coded examination findings and tests, and a rubric. This module
does that conversion with plain rules (no model), so the result is reproducible and every guess is
listed in the `ImportReport` for an educator to review.

    report = import_agentclinic(Path("agentclinic_medqa.jsonl"), Path("casepacks/agentclinic"))
    print(report.summary())

Nothing is written unless every record parses; the pack folder appears in one rename.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

from ..errors import CaseFormatError, EdgeTutorError
from .codes import EXAM_CODES, TEST_CODES
from .lint import lint_case_text, norm
from .packmeta import PackMeta
from .schema import Case, slug

PACK_ID = "agentclinic-medqa"
PACK_LICENSE = "MIT (AgentClinic, 2024 Samuel Schmidgall)"
CASE_PREFIX = "agentclinic"

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


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
        for case in self.cases:
            issues = case.unmapped()
            if issues:
                lines.append(f"{case.case_id} (line {case.line}):")
                lines += [f"  - {issue}" for issue in issues]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def import_agentclinic(jsonl: Path, out: Path) -> ImportReport:
    """Convert every record of `jsonl` into a pack source folder at `out`.

    Raises CaseFormatError (naming file and line) if any record is unreadable: then nothing is
    written. Refuses (EdgeTutorError) if `out` exists and is not an empty folder.
    """
    _check_target(out)
    records = _read_records(jsonl)
    data_dir = jsonl.parent
    license_path = data_dir / "LICENSE"
    if not license_path.is_file():
        raise CaseFormatError(f"{license_path}: missing; the MIT licence notice must ship with the pack")

    report = ImportReport(source=jsonl, out=out)
    files: dict[str, str] = {}
    for number, (line, record) in enumerate(records, start=1):
        case, info = _convert(record, number, line, jsonl)
        text = _dump_yaml(case)
        _, problems = lint_case_text(text, f"cases/{info.case_id}.yaml")
        info.lint = [str(p) for p in problems]
        report.cases.append(info)
        files[f"cases/{info.case_id}.yaml"] = text

    meta = _pack_meta(len(records))
    PackMeta.model_validate(meta)  # a bug here is ours, not the data's: let it raise
    files["pack.yaml"] = _dump_yaml(meta)
    readme = data_dir / "README.md"
    try:
        files["ATTRIBUTION.md"] = (
            readme.read_text(encoding="utf-8") if readme.is_file() else _FALLBACK_ATTRIBUTION
        )
        files["LICENSE"] = license_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFormatError(f"{data_dir}: cannot read the attribution files: {err}") from err
    _write_atomically(out, files)
    return report


_FALLBACK_ATTRIBUTION = """# AgentClinic MedQA OSCE cases (third-party data, MIT)

Imported from the AgentClinic project (SamuelSchmidgall/AgentClinic, `agentclinic_medqa.jsonl`),
MIT licence, copyright 2024 Samuel Schmidgall; see `LICENSE`. The cases are MedQA (USMLE)
vignettes expanded into OSCE form.
"""


def _pack_meta(count: int) -> dict[str, Any]:
    return {
        "id": PACK_ID,
        "version": 1,
        "title": "AgentClinic MedQA OSCE cases (imported)",
        "description": (
            f"{count} AgentClinic MedQA (USMLE) OSCE cases, imported automatically from the public "
            "AgentClinic data set. They describe a well-equipped hospital and are NOT adapted to "
            "low-resource settings; the source has no management plans, so the cases are scored on "
            "history, examination, investigations and diagnosis. Review before teaching with them."
        ),
        "publisher": "EdgeTutor (automatic import of AgentClinic data)",
        "license": PACK_LICENSE,
    }


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EdgeTutorError(f"{out}: already exists and is not empty; choose a new folder")


def _write_atomically(out: Path, files: dict[str, str]) -> None:
    """Write into a temporary sibling folder, then rename it into place: never a half pack."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        # mkdtemp makes a private (0700) folder; the pack should get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        _check_target(out)  # someone may have created it meanwhile
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_records(jsonl: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        raw = jsonl.read_bytes()
    except OSError as err:
        raise CaseFormatError(f"{jsonl}: cannot read: {err.strerror or err}") from err
    records: list[tuple[int, dict[str, Any]]] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            text = chunk.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise CaseFormatError(f"{jsonl}:{number}: not UTF-8 text (byte {err.start + 1})") from err
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise CaseFormatError(f"{jsonl}:{number}: invalid JSON: {err.msg} (column {err.colno})") from err
        except (ValueError, RecursionError) as err:  # a 5,000-digit number, 100,000 nested lists
            raise CaseFormatError(f"{jsonl}:{number}: invalid JSON: {str(err)[:100]}") from err
        _check_record(record, f"{jsonl}:{number}")
        records.append((number, record))
    if not records:
        raise CaseFormatError(f"{jsonl}: no records (expected one JSON object per line)")
    return records


def _check_record(record: Any, where: str) -> None:
    """The few keys every conversion needs; everything else is optional and drifts."""

    def need(obj: Any, key: str, kind: type, path: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise CaseFormatError(f"{where}: missing {path}")
        value = obj[key]
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            raise CaseFormatError(f"{where}: {path} must be a non-empty {kind.__name__}")
        return value

    if not isinstance(record, dict):
        raise CaseFormatError(f"{where}: a record must be a JSON object")
    osce = need(record, "OSCE_Examination", dict, "OSCE_Examination")
    need(osce, "Correct_Diagnosis", str, "OSCE_Examination.Correct_Diagnosis")
    actor = need(osce, "Patient_Actor", dict, "OSCE_Examination.Patient_Actor")
    need(actor, "Demographics", str, "Patient_Actor.Demographics")
    symptoms = actor.get("Symptoms", {})
    if not isinstance(symptoms, dict):
        raise CaseFormatError(f"{where}: Patient_Actor.Symptoms must be an object")
    need(symptoms, "Primary_Symptom", str, "Patient_Actor.Symptoms.Primary_Symptom")
    for key in ("Physical_Examination_Findings", "Test_Results"):
        if not isinstance(osce.get(key, {}), dict):
            raise CaseFormatError(f"{where}: OSCE_Examination.{key} must be an object")


def _dump_yaml(data: dict[str, Any]) -> str:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    # ruamel leaves a space where it wraps a long plain scalar; YAML folding drops it anyway.
    return re.sub(r"[ \t]+\n", "\n", buf.getvalue())


# ---------------------------------------------------------------------------------------------
# Small text helpers
# ---------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    """A word list written as one string: easier to read and extend than a set literal."""
    return frozenset(text.split())


def _clean(text: str) -> str:
    return " ".join(str(text).replace("\u2019", "'").replace("\u2018", "'").split())


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _end(text: str) -> str:
    text = text.strip()
    return text if not text or text.rstrip("'\")")[-1:] in (".", "!", "?") else text + "."


# Words kept capitalised when a fragment is lower-cased to follow "because of ...".
_PROPER = {"crohn", "kaposi", "graves", "meniere", "lyme", "parkinson", "huntington", "hirschsprung"}


def _lc(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or a proper name."""
    first = text.split(" ", 1)[0]
    letters = re.sub(r"[^A-Za-z]", "", first)
    if len(letters) > 1 and letters[1:].islower() and letters.lower() not in _PROPER:
        return text[:1].lower() + text[1:]
    return text


def _human(key: str) -> str:
    """`Chest_X-ray` -> `Chest X-ray`, `CBC_with_Differentiation` -> `CBC with differentiation`."""
    words = _clean(key.replace("_", " ")).split()
    out = []
    for i, w in enumerate(words):
        if i and len(w) > 1 and w[0].isupper() and w[1:].islower() and w.lower() not in _PROPER:
            w = w.lower()
        out.append(w)
    return " ".join(out)


_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "vs", "e.g", "i.e", "approx", "st", "etc"}


def split_sentences(text: str) -> list[str]:
    """Sentences, not fooled by `C. difficile`, `e.g.` or `5.4 kg`."""
    text = _clean(text)
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?]['\")]*(?=\s+[A-Z0-9\"'(])", text):
        before = text[start : m.start()].rsplit(" ", 1)[-1]
        if (len(before) == 1 and before.isupper()) or before.lower() in _ABBREVIATIONS:
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return out


# ---------------------------------------------------------------------------------------------
# Diagnosis names: what the patient must never say
# ---------------------------------------------------------------------------------------------

# Well-known abbreviations and names for the diagnoses in the data. Two-letter ones are left out
# when they are ordinary words or units ("ALL", "MG"): they would make lint flag "10 mg".
_KNOWN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "benign paroxysmal positional vertigo": ("BPPV",),
    "chronic lymphocytic leukemia": ("CLL", "chronic lymphocytic leukaemia"),
    "acute myelogenous leukemia": ("AML", "acute myeloid leukemia", "acute myeloid leukaemia"),
    "acute lymphoblastic leukemia": ("acute lymphoblastic leukaemia",),
    "atrial septal defect": ("ASD",),
    "neuroleptic malignant syndrome": ("NMS",),
    "primary sclerosing cholangitis": ("PSC",),
    "pelvic inflammatory disease": ("PID",),
    "irritable bowel syndrome": ("IBS",),
    "steven johnson syndrome": ("Stevens-Johnson syndrome", "SJS"),
    "progressive multifocal leukoencephalopathy": ("PML",),
    "multiple system atrophy": ("MSA",),
    "frontotemporal dementia": ("FTD",),
    "diffuse large b cell lymphoma": ("DLBCL",),
    "chronic venous insufficiency": ("CVI",),
    "acute interstitial nephritis": ("AIN",),
    "disseminated gonococcal infection": ("DGI",),
    "intraventricular hemorrhage": ("IVH", "intraventricular haemorrhage"),
    "respiratory distress syndrome": ("RDS", "hyaline membrane disease"),
    "neonatal respiratory distress syndrome": ("RDS", "respiratory distress syndrome"),
    "tuberculosis": ("TB",),
    "huntington disease": ("Huntington's disease", "Huntington chorea"),
    "parkinson disease": ("Parkinson's disease",),
    "legg calvé perthes disease": ("Perthes disease", "Legg-Calve-Perthes disease"),
    "hirschsprung disease": ("Hirschsprung's disease", "congenital aganglionic megacolon"),
    "hirschsprung s disease": ("Hirschsprung disease", "congenital aganglionic megacolon"),
    "erythema infectiosum": ("fifth disease", "parvovirus B19 infection"),
    "roseola infantum": ("roseola", "exanthem subitum", "sixth disease"),
    "osteoclastoma": ("giant cell tumor of bone", "giant cell tumour of bone"),
    "waldenstrom macroglobulinemia": ("Waldenström macroglobulinemia", "lymphoplasmacytic lymphoma"),
    "glanzmann s thrombasthenia": ("Glanzmann thrombasthenia",),
    "c difficile colitis": (
        "Clostridioides difficile colitis",
        "Clostridium difficile colitis",
        "C diff colitis",
    ),
    "apical lung tumor": ("Pancoast tumor", "Pancoast tumour", "superior sulcus tumor"),
    "bed bug bite": ("bed bug bites",),
    "de quervain tenosynovitis": ("De Quervain's tenosynovitis",),
    "uterine rupture": ("ruptured uterus",),
    "posterior hip dislocation": ("hip dislocation",),
    "disc herniation": ("herniated disc", "slipped disc"),
    "testicular torsion": ("torsion of the testis",),
    "eczematous dermatitis": ("eczema",),
    "congenital rubella infection": ("congenital rubella syndrome", "congenital rubella"),
    "active chronic hepatitis b infection": ("chronic hepatitis B", "hepatitis B"),
    "medullary sponge kidney": ("medullary sponge kidney disease",),
    "physiological neonatal jaundice": ("physiologic jaundice", "physiological jaundice"),
    "hemophilia a": ("haemophilia A", "factor VIII deficiency"),
    "hemophilia": ("haemophilia",),
    "lisdexamfetamine intoxication": ("amphetamine intoxication",),
}

# Words of a diagnosis name too general to give it away on their own ("disease", "acute"...):
# a sentence mentioning them is kept; a sentence with any other word of the name is dropped.
_GENERIC_DX_WORDS = _words(
    """disease syndrome disorder infection infections acute chronic active primary secondary benign
    malignant tumor tumour cancer lung apical congenital neonatal physiological physiologic normal
    behavior behaviour reaction serum like deficiency impaired production multiple system progressive
    diffuse large cell rupture tendon point insertion posterior positional paroxysmal situational
    respiratory distress breast milk personality kidney venous insufficiency dementia hemorrhage
    arthritis dermatitis colitis bursitis cystitis nephritis nephropathy interstitial intoxication
    adenocarcinoma leukemia leukaemia lymphoma bite bug bed hip disc uterine jaundice pneumonia
    vertigo syncope atrophy defect septal atrial toxicum failure hepatic fulminant ischemia
    mesenteric torsion testicular sickness herniation dislocation complex partial uterus ruptured slipped
    bowel aorta aortic double giant essential factor superior membrane pelvic inflammatory erythema fifth
    sixth testis disseminated bladder brain blood bone heart liver renal cardiac vein nerve spinal cord
    joint muscle ovarian"""
)


@dataclass(frozen=True)
class DxNames:
    name: str
    synonyms: tuple[str, ...]
    phrases: tuple[str, ...]  # normalised names and synonyms
    words: tuple[str, ...]  # distinctive single words

    def named_in(self, text: str) -> str | None:
        """The name or word of the diagnosis that `text` mentions, if any."""
        said = f" {norm(text)} "
        squeezed = said.replace(" s ", " ")  # "Hirschsprung's" -> "hirschsprung"
        for phrase in self.phrases:
            if f" {phrase} " in said or f" {phrase} " in squeezed:
                return phrase
        for word in self.words:
            if re.search(rf" {re.escape(word)}s? ", squeezed):
                return word
        return None

    def in_keyword(self, keyword: str) -> bool:
        """Lint refuses a keyword equal to a name; we also drop words taken from a name."""
        kw = norm(keyword)
        return any(kw == p or f" {kw} " in f" {p} " for p in self.phrases)


def diagnosis_names(correct: str) -> DxNames:
    raw = _clean(correct)
    synonyms: list[str] = []
    name = raw
    # "Benign Paroxysmal Positional Vertigo (BPPV)": the name, and the bracket as a synonym.
    for inner in re.findall(r"\(([^)]*)\)", raw):
        synonyms.append(inner.strip())
    name = _clean(re.sub(r"\s*\([^)]*\)", "", raw)) or raw
    key = norm(name)
    synonyms += _KNOWN_SYNONYMS.get(key, ())
    if "'s " in name:
        synonyms.append(name.replace("'s ", " "))
    for a, b in (("hemo", "haemo"), ("leukemia", "leukaemia"), ("tumor", "tumour"), ("edema", "oedema")):
        if a in name.lower():
            synonyms.append(re.sub(a, b, name, flags=re.I))
    seen = {norm(name)}
    unique = []
    for s in synonyms:
        if s and norm(s) not in seen:
            seen.add(norm(s))
            unique.append(s)
    phrases = tuple(sorted({norm(x) for x in [name, *unique] if norm(x)}, key=lambda p: (-len(p), p)))
    words = sorted(
        {
            w
            for p in phrases
            for w in p.split()
            if len(w) >= 5 and w not in _GENERIC_DX_WORDS and not w.isdigit()
        }
    )
    return DxNames(name=name, synonyms=tuple(unique), phrases=phrases, words=tuple(words))


# ---------------------------------------------------------------------------------------------
# Patient: demographics, voice
# ---------------------------------------------------------------------------------------------

_FEMALE_NAMES = [
    "Anna",
    "Maria",
    "Sarah",
    "Laura",
    "Emma",
    "Grace",
    "Ruth",
    "Helen",
    "Clara",
    "Julia",
    "Nora",
    "Esther",
    "Lucy",
    "Alice",
    "Rose",
    "Irene",
    "Martha",
    "Eva",
    "Hannah",
    "Leah",
    "Amina",
    "Sofia",
    "Mei",
    "Priya",
    "Fatima",
    "Ingrid",
    "Elena",
    "Joy",
    "Naomi",
    "Carmen",
]
_MALE_NAMES = [
    "David",
    "Samuel",
    "Peter",
    "Daniel",
    "Thomas",
    "James",
    "Michael",
    "John",
    "Paul",
    "Mark",
    "Adam",
    "Simon",
    "Joseph",
    "Luke",
    "Martin",
    "Victor",
    "Ahmed",
    "Ravi",
    "Kenji",
    "Carlos",
    "Ivan",
    "Omar",
    "Tomas",
    "Felix",
    "Noah",
    "Elias",
    "Hugo",
    "Leon",
    "Isaac",
    "Oscar",
]
_SURNAMES = [
    "Miller",
    "Novak",
    "Santos",
    "Okafor",
    "Larsen",
    "Moreau",
    "Rossi",
    "Kowalski",
    "Tanaka",
    "Haddad",
    "Jensen",
    "Costa",
    "Fischer",
    "Mensah",
    "Petrov",
    "Lindqvist",
    "Adeyemi",
    "Silva",
    "Nguyen",
    "Horvat",
    "Baker",
    "Keller",
    "Duarte",
    "Mwangi",
    "Sato",
    "Ortiz",
    "Brennan",
    "Kaur",
    "Ito",
    "Hughes",
    "Walsh",
    "Dubois",
    "Romero",
]

CHILD_AGE = 12  # below this a parent answers for the patient


@dataclass(frozen=True)
class Demographics:
    age_years: int
    age_months: int | None
    sex: str
    label: str  # "35-year-old", "8-month-old", "2-day-old", "newborn"
    sex_stated: bool


def parse_demographics(text: str, context: str) -> Demographics:
    """Age and sex from `Demographics` ("35-year-old female", "Newborn, female", "3-year-old child").

    Sex not in the demographics is read from the pronouns of the history (`context`).
    """
    t = _clean(text).lower()
    years, months, label = 0, None, "newborn"
    if m := re.search(r"(\d+)[- ]year[- ]old", t):
        years, label = int(m.group(1)), f"{m.group(1)}-year-old"
    elif m := re.search(r"(\d+)[- ]month[- ]old", t):
        total = int(m.group(1))
        years, months, label = total // 12, total % 12, f"{total}-month-old"
    elif m := re.search(r"(\d+)[- ](day|week)[- ]old", t):
        years, months, label = 0, 0, f"{m.group(1)}-{m.group(2)}-old"
    elif "newborn" in t or "neonate" in t or "infant" in t:
        years, months, label = 0, 0, "newborn"
    sex, stated = "", True
    if re.search(r"\b(female|woman|girl|lady|gravida)\b", t):
        sex = "female"
    elif re.search(r"\b(male|man|boy|gentleman)\b", t):
        sex = "male"
    else:
        stated = False
        c = f" {_clean(context).lower()} "
        c = re.sub(r"\b(mother|wife|sister|daughter)\b[^.]*", " ", c)  # their pronouns are not the patient's
        she = len(re.findall(r"\b(she|her|herself|daughter|girl)\b", c))
        he = len(re.findall(r"\b(he|his|him|himself|son|boy)\b", c))
        sex = "female" if she > he else "male" if he > she else ""
    return Demographics(years, months, sex, label, stated)


@dataclass(frozen=True)
class Voice:
    """Who is speaking and how they refer to the patient."""

    sex: str  # the patient's
    child: bool  # a parent speaks
    parent: str  # "mother" or "father"
    noun: str  # how the parent names the child: "my son", "my daughter", "my baby"
    he: str
    his: str
    him: str

    @property
    def subj(self) -> str:
        """Subject of a negative answer: "I haven't had" / "he hasn't had"."""
        return self.he if self.child else "I"


def make_voice(demo: Demographics, history: str) -> Voice:
    female = demo.sex == "female"
    child = demo.age_years < CHILD_AGE
    h = history.lower()
    # The parent who reports in the source answers; the mother unless only a father reports.
    reports = r"(?:reports?|notes?|mentions?|says|describes?|recalls?|has noticed|noticed)"
    parent = (
        "father"
        if (re.search(rf"\bfather {reports}", h) and not re.search(rf"\bmother {reports}", h))
        else "mother"
    )
    if demo.age_years == 0 and (demo.age_months or 0) < 12:
        noun = "my baby"
    else:
        noun = "my daughter" if female else "my son"
    return Voice(
        sex=demo.sex,
        child=child,
        parent=parent,
        noun=noun,
        he="she" if female else "he",
        his="her" if female else "his",
        him="her" if female else "him",
    )


# ---------------------------------------------------------------------------------------------
# Third person -> first person
# ---------------------------------------------------------------------------------------------

_BASE_VERBS = """report note mention state describe recall deny take smoke drink use work live enjoy attend
consume experience feel admit complain present appear play show believe notice want need seem tend get
go come say think know remember wake sleep eat walk hike run keep reveal add cite recount spend try
worry wonder endorse exercise like love prefer struggle suffer undergo visit wear yell cry vomit cough
avoid comment refuse engage participate perform lose gain find hear see develop continue start stop
receive require follow look live stay help complain travel return lift carry sit stand drive hold hurt make
give bring move reach turn bend breathe swallow chew speak talk read write fall trip care cook clean dress
brush climb train study worsen improve put push pull open close hike camp swim own share seek dress
refuse engage"""
_BASE = _BASE_VERBS.split()


def _third(verb: str) -> str:
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    return verb + "s"


_THIRD_TO_BASE = {_third(v): v for v in _BASE} | {
    "has": "have",
    "is": "am",
    "does": "do",
    "doesn't": "don't",
    "hasn't": "haven't",
    "isn't": "am not",
    "was": "was",
}
_ADVERBS = sorted(
    _words(
        """also now still currently recently first then occasionally never often initially previously only
        further just later sometimes frequently rarely usually always even subsequently additionally
        regularly generally"""
    )
)
_ADV = "|".join(_ADVERBS)

_OBJECT_FOLLOWERS = _words(
    """to and or with from at in on for that up off out down back away about by as into after before
    during when while since because so but if than she he i it they we"""
)


def _conjugate_after_i(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        verb = m.group(2)
        base = _THIRD_TO_BASE.get(verb.lower())
        return f"I{m.group(1)} {base}" if base else m.group(0)

    return re.sub(rf"\bI((?:\s+(?:{_ADV}))*)\s+([A-Za-z']+)", fix, text)


def _contract(text: str) -> str:
    for a, b in (
        (r"\bI am not\b", "I'm not"),
        (r"\bI am\b", "I'm"),
        (r"\bI have (been|had)\b", r"I've \1"),
        (r"\bI do not\b", "I don't"),
        (r"\bI have not\b", "I haven't"),
        (r"\bI did not\b", "I didn't"),
        (r"\bI was not\b", "I wasn't"),
        (r"\bI and my (\w+)", r"my \1 and I"),
        (r"\bmy I\b", "I"),
    ):
        text = re.sub(a, b, text)
    return text


def _swap_her(text: str) -> str:
    """ "her" -> "my" before a noun ("her hair"), "me" as an object ("wakes her up")."""

    def fix(m: re.Match[str]) -> str:
        pron, space, nxt = m.group(1), m.group(2), m.group(3)
        word = "me" if (not nxt or nxt.lower() in _OBJECT_FOLLOWERS) else "my"
        return (_cap(word) if pron[0] == "H" else word) + space + nxt

    return re.sub(r"\b([Hh]er)\b(\s*)([A-Za-z0-9]*)", fix, text)


def _patient_pronouns(text: str, sex: str) -> str:
    """The patient's own he/she/his/her -> I/my/me."""
    if sex == "female":
        text = re.sub(r"\b([Ss])he's been\b", "I've been", text)
        text = re.sub(r"\b([Ss])he's\b", "I'm", text)
        text = re.sub(r"\bherself\b", "myself", text)
        text = re.sub(r"\bhers\b", "mine", text)
        text = _swap_her(text)
        text = re.sub(r"\b[Ss]he\b", "I", text)
    else:
        text = re.sub(r"\b([Hh])e's been\b", "I've been", text)
        text = re.sub(r"\b([Hh])e's\b", "I'm", text)
        text = re.sub(r"\bhimself\b", "myself", text)
        text = re.sub(r"\b[Hh]is\b", lambda m: "My" if m.group(0)[0] == "H" else "my", text)
        text = re.sub(r"\bhim\b", "me", text)
        text = re.sub(r"\b[Hh]e\b", "I", text)
    return text


_OTHER_PEOPLE = {
    "mother": "female",
    "wife": "female",
    "daughter": "female",
    "sister": "female",
    "girlfriend": "female",
    "aunt": "female",
    "grandmother": "female",
    "father": "male",
    "husband": "male",
    "son": "male",
    "brother": "male",
    "boyfriend": "male",
    "uncle": "male",
    "grandfather": "male",
    "family": "",
    "parents": "",
    "roommates": "",
    "partner": "",
    "teacher": "",
    "peers": "",
    "friends": "",
    "members": "",
    "caregiver": "",
}
_SUBJECT_OTHER = re.compile(
    r"^(?:the patient's |patient's |his |her |the |my )?(?:\w+ )?(" + "|".join(_OTHER_PEOPLE) + r")\b",
    re.I,
)

_REPORT_VERBS = (
    r"reports|reported|notes|noted|mentions|mentioned|states|stated|says|said|reveals|revealed|adds|added|"
    r"endorses|indicates|confirms|explains|recalls|recounts|remembers|admits(?: to)?|complains of|"
    r"complained of|describes|described|cites|expresses|acknowledges"
)
_PATIENT_SUBJECT = r"(?:the patient|patient|he|she)"
_REPORT = re.compile(
    rf"^(?:{_PATIENT_SUBJECT}\s+)?(?:(?:{_ADV})\s+)*({_REPORT_VERBS})\s+(that\s+)?(.*)$", re.I
)
_FINITE = _words(
    """is are was were has have had began begins started starts got tend tends worsens worsened improves
    improved occurs occurred appeared appears spread spreads resolved comes came goes went became becomes
    seems seemed happens happened began lasted lasts wakes woke worsen improve persist occur
    radiates"""
)


def _is_clause(text: str) -> bool:
    """Does `text` read as a clause ("these symptoms tend to worsen") rather than a noun phrase?"""
    main = re.split(
        r",|\b(?:which|that|who|where|when|while|and|since|after|before|until|because|with|for)\b",
        text.lower(),
        maxsplit=1,
    )[0]
    words = re.findall(r"[A-Za-z']+", main)[:12]
    if words and words[0] in ("she", "he", "they", "it", "there", "i", "we"):
        return True
    return any(w in _FINITE for w in words[1:])


def _duration_phrase(n: str, unit: str) -> str:
    if n in ("1", "one", "a"):
        return f"a {unit}" if unit != "1" else unit
    return f"{n} {unit}s"


_ING_ADJECTIVES = _words(
    """increasing decreasing worsening during morning evening bleeding shooting burning stabbing throbbing
    aching tingling swelling crushing ongoing itching"""
)


def _reported(verb: str, rest: str, that: bool = False) -> tuple[str, bool]:
    """`<patient> <verb> [that] <rest>` in the first person. Returns (text, negative)."""
    v = verb.lower()
    rest = rest.strip()
    low = rest.lower()
    if that and v not in ("recalls", "recounts", "remembers", "admits", "admits to", "cites"):
        return rest, False
    if low.startswith("recent return from "):
        return f"I recently returned from {rest[len('recent return from ') :]}", False
    described = re.match(r"(the|his|her|my) ([\w-]+(?: [\w-]+)?) as (.*)$", rest, re.I)
    if v.startswith("describ") and described:
        det = "the" if described.group(1).lower() == "the" else "my"
        return f"{det} {described.group(2)} is {described.group(3)}", False
    if v.startswith("complain"):
        return f"I've been having {rest}", False
    if v in ("recalls", "recounts", "remembers"):
        return f"I remember {rest}", False
    if v.startswith("admits"):
        if low.startswith("being "):
            return f"I'm {rest[6:]}", False
        return f"I admit to {rest}" if v == "admits to" else f"I admit {rest}", False
    if v == "cites":
        if m := re.match(r"(.*) as (?:a |the )?(?:possible |likely )?cause$", rest, re.I):
            return f"I think {m.group(1)} might be the cause", False
        return f"I'd mention {rest}", False
    # reports / notes / mentions / states ...: the content carries the meaning.
    if low.startswith("no "):
        return f"I have {rest}", True
    if m := re.match(
        r"an? (?:(\d+|one|two|three|four|five|six|several)[- ](day|week|month|year)|"
        r"(year|month|week)[- ]long)"
        r"[- ]history of (?:experiencing |having )?(.*)$",
        rest,
        re.I,
    ):
        if m.group(3):
            dur = f"a {m.group(3).lower()}"
        else:
            dur = _duration_phrase(m.group(1).lower(), m.group(2).lower())
        what = m.group(4)
        verb = "been" if re.match(r"\w+ing\b", what) and what.split()[0] not in _ING_ADJECTIVES else "had"
        return f"For the past {dur.removeprefix('a ')}, I've {verb} {what}", False
    if re.match(r"(a )?history of ", low):
        return f"I have {'a ' if not low.startswith('a ') else ''}{rest}", False
    if m := re.match(r"(\w+ing)\b\s*(.*)$", rest):
        ing, tail = m.group(1).lower(), m.group(2)
        if ing == "having":
            tail = re.sub(r"^had\s+", "", tail)
            return f"I've had {tail}", tail.lower().startswith("no ")
        if ing == "noticing":
            return f"I noticed {tail}", False
        if ing == "being":
            return (f"I was {tail}" if " ago" in low else f"I'm {tail}"), False
        if ing not in _ING_ADJECTIVES:
            return (f"I was {rest}" if " ago" in low else f"I've been {rest}"), False
    if _is_clause(rest):
        return rest, False
    if eaten := re.match(r"the (?:consumption|ingestion|intake) of (.*)$", rest, re.I):
        return f"I had {eaten.group(1)}", False
    if re.search(r"\bago\b", low):
        return f"I had {rest}", False
    if low.startswith("the "):
        return f"I've noticed {rest}", False  # "reports the recent formation of red bumps"
    return f"I have {rest}", False


def _patient_subject_to_i(text: str) -> str:
    text = re.sub(r"^(?:the patient|patient)\b(?!')", "I", text, flags=re.I)
    text = re.sub(r"^(?:he|she)\b", "I", text, flags=re.I)
    text = re.sub(
        r"^I((?:\s+(?:" + _ADV + r"))*)\s+presents? to (the [\w ]+?) with\b", r"I\1 came to \2 with", text
    )
    text = re.sub(r"^I((?:\s+(?:" + _ADV + r"))*)\s+presents? (with|for)\b", r"I've\1 come in \2", text)
    text = re.sub(r"^I((?:\s+(?:" + _ADV + r"))*)\s+is here\b", r"I'm\1 here", text)
    return text


# Coordinated verbs share the subject: "I take no medications and does not smoke". Only when "I"
# leads the clause: in "the pain worsens when I hold him and is eased", "is" belongs to the pain.
_COORDINATED = re.compile(
    r"((?:^|\bthat\s+|^[^,]*,\s*)I(?:'ve|'m)?\b"
    r"(?:(?!\b(?:which|who|whom|where|when|while|because|although|though)\b)[^;])*?"
    r"\b(?:and|but|or)\s+(?:(?:" + _ADV + r")\s+)*)"
    r"(has|is|does|doesn't|hasn't|takes|drinks|smokes|uses|works|lives|denies|reports|notes|seeks|"
    r"experiences|feels|plays|enjoys|attends|consumes|describes|mentions|admits)\b"
)


def _coordinate(text: str) -> str:
    for _ in range(3):
        text = _COORDINATED.sub(lambda m: m.group(1) + _THIRD_TO_BASE[m.group(2).lower()], text)
    return text


def _first_person_adult(text: str, v: Voice) -> tuple[str, bool]:
    """An adult patient's own sentence in the first person. Returns (answer, negative)."""
    negative = False
    other = _SUBJECT_OTHER.match(text)
    swap = True
    if other and not re.match(r"^(?:the patient|patient|he|she)\b(?!')", text, re.I):
        who = other.group(1).lower()
        # "The patient's mother says she had..." (a woman patient): her she/her are not ours.
        swap = _OTHER_PEOPLE.get(who, "") != v.sex
        text = re.sub(rf"^(?:the patient's |patient's |the )({who})\b", r"my \1", text, flags=re.I)
        text = re.sub(r"^(\w+ \w+|\w+) (reports|notes|mentions|states|adds) that\b", r"\1 says that", text)
        if who in ("mother", "father", "parents"):
            text = re.sub(r"\b(?:her|his|their) (?:daughter|son|child)'s\b", "my", text, flags=re.I)
            text = re.sub(
                r"\b(?:her|his|their) (?:daughter|son|child)\b(?=\s+(?:has|is|was|had|does|seems)\b)",
                "I",
                text,
                flags=re.I,
            )
            text = re.sub(r"\b(?:her|his|their) (?:daughter|son|child)\b", "me", text, flags=re.I)
    elif m := _REPORT.match(text):
        text, negative = _reported(m.group(1), m.group(3), bool(m.group(2)))
    else:
        text = _patient_subject_to_i(text)
    text = re.sub(r"\b(?:the )?patient's\b", "my", text, flags=re.I)
    text = re.sub(rf"({_SUBJECT_SLOT})(?:the )?patient\b(?!')", r"\1I", text, flags=re.I)
    text = re.sub(r"\bthe patient\b", "me", text, flags=re.I)
    text = re.sub(r"\bthe (husband|wife|partner|boyfriend|girlfriend)\b", r"my \1", text, flags=re.I)
    text = re.sub(
        r"\b(towards|to|with|from|by|and) (mother|father|wife|husband|parents)\b", r"\1 my \2", text
    )
    if swap:
        text = _patient_pronouns(text, v.sex)
    text = _conjugate_after_i(text)
    return _contract(_coordinate(text)), negative


_PARENT_WORDS = r"(?:mother|mom|parents?|father|caregiver)"
# Where a noun is the subject of its clause ("..., though the mother missed..." -> "I missed").
_SUBJECT_SLOT = (
    r"^|,\s+|\b(?:that|and|but|when|because|after|before|until|while|if|though|although|so|since|as|where|"
    r"indicated|showed|shows|found|believes|thinks|knows)\s+"
)
_CHILD_WORDS = r"(?:patient|child|infant|baby|newborn|neonate|boy|girl|toddler)"
_PARENT_REPORT = re.compile(
    rf"^(?:the |his |her )?(?:{_CHILD_WORDS}'s )?({_PARENT_WORDS})\s+(?:also\s+)?"
    r"(reports?|notes?|mentions?|says|states?|describes?|recalls?|adds?|explains?)\s+(?:that\s+)?(.*)$",
    re.I,
)


def _first_person_parent(text: str, v: Voice) -> tuple[str, bool]:
    """A sentence about a child, as the parent would say it ("My son has been very fussy")."""
    negative = False
    mother_subject = bool(
        re.match(rf"^(?:the |his |her )?(?:{_CHILD_WORDS}'s )?{_PARENT_WORDS}\b", text, re.I)
    )
    # A clause split off "...but notes that he is helpful": the parent is still the one speaking.
    text = re.sub(
        r"^(?:also\s+)?(?:reports?|notes?|mentions?|says|adds)\s+(?:that\s+)?", "", text, flags=re.I
    )
    if m := _PARENT_REPORT.match(text):
        plural = m.group(1).lower().startswith("parent")
        rest = m.group(3)
        if d := re.match(r"(?:him|her) as (.*)$", rest, re.I):
            rest = f"{v.he} is {d.group(1)}"
        if ing := re.match(r"(having|noticing|seeing)\s+(.*)$", rest, re.I):
            lead = {"having": "had", "noticing": "noticed", "seeing": "seen"}[ing.group(1).lower()]
            tail = re.sub(r"^had\s+", "", ing.group(2))
            rest = f"{'we' if plural else 'I'} {'have ' if lead != 'noticed' else ''}{lead} {tail}"
        text = rest
    # The parent: "the mother" -> I / me / my, "the parents" -> we / us / our.
    owner = rf"(?:(?:the|his|her)\s+)?(?:{_CHILD_WORDS}'s\s+)?"
    text = re.sub(rf"\b{owner}(?:mother|mom)'s\b", "my", text, flags=re.I)
    text = re.sub(rf"\b{owner}parents'\s", "our ", text, flags=re.I)
    text = re.sub(rf"({_SUBJECT_SLOT}){owner}(?:mother|mom|parent)\b(?!')", r"\1I", text, flags=re.I)
    text = re.sub(
        rf"({_SUBJECT_SLOT})(?:(?:the|his|her)\s+)(?:{_CHILD_WORDS}'s\s+)?parents\b",
        r"\1we",
        text,
        flags=re.I,
    )
    text = re.sub(r"^parents\b", "we", text, flags=re.I)
    text = re.sub(r"\bto an? [\w\s-]*?\bmother\b", "to me", text, flags=re.I)
    text = re.sub(rf"\b{owner}(?:mother|mom|parent)\b(?!'s)", "me", text, flags=re.I)
    text = re.sub(r"\bwith (?:(?:his|her|the) )?parents\b", "with us", text, flags=re.I)
    text = re.sub(r"\b(?:the|his|her) parents\b", "us", text, flags=re.I)
    # The child: "the patient" / "the infant" -> "my son".
    text = re.sub(rf"\b(?:the|her|his)\s+{_CHILD_WORDS}'s\b", f"{v.noun}'s", text, flags=re.I)
    text = re.sub(rf"\b(?:the|her)\s+{_CHILD_WORDS}\b", v.noun, text, flags=re.I)
    text = re.sub(r"^patient's\b", _cap(v.his), text, flags=re.I)
    text = re.sub(r"\bpatient's\b", v.his, text, flags=re.I)
    text = re.sub(r"^patient\b", _cap(v.noun), text, flags=re.I)
    text = re.sub(r"\bher (child|son|daughter|baby|infant|newborn)\b", r"my \1", text, flags=re.I)
    # "she"/"her" is the mother when the patient is a boy, or when the mother is the subject.
    if v.parent == "mother" and (v.sex == "male" or mother_subject):
        text = _swap_her(text)
        text = re.sub(r"\b[Ss]he\b", "I", text)
    text = re.sub(
        rf"^{v.noun} (?:is|was|has been) (?:presented|brought)(?: in)? by (me|us)\b"
        r"(?: (?:due to|because of))?",
        lambda m: (
            f"{'I' if m.group(1) == 'me' else 'We'}'ve brought {v.noun} in"
            + (" because of" if len(m.group(0).split()) > 6 else "")
        ),
        text,
        flags=re.I,
    )
    text = re.sub(
        rf"^{v.noun} (?:is|was|has been) brought(?: in)?(?: to the [\w ]+?)? (?:due to|because of)\b",
        f"I've brought {v.noun} in because of",
        text,
        flags=re.I,
    )
    text = re.sub(r"\bbut (?:notes|mentions|says|reports|adds) that\b", "but", text)
    text = re.sub(r"^They\b", "We", text)
    if v.parent == "mother":
        text = re.sub(
            r"(?<!\bhis )(?<!\bher )(?<!\bmy )(?<!\ba )(?<!')\b(?:the )?father\b", f"{v.his} father", text
        )
    text = _conjugate_after_i(text)
    text = re.sub(r"\b[Ww]e (reports|notes|mentions|says)\b", lambda m: f"we {m.group(1)[:-1]}", text)
    if re.match(r"^\s*no\b", text, re.I):
        negative = True
    return _contract(_coordinate(text)), negative


_PAST_VERBS = _words(
    """was had returned travelled traveled moved started stopped quit underwent received immigrated joined
    visited went took developed noticed began"""
)


def _telegraphic(text: str, v: Voice) -> str | None:
    """A subject-less fragment starting with a verb ("Drinks wine occasionally") -> with a subject."""
    m = re.match(rf"^((?:(?:{_ADV})\s+)*)([A-Za-z']+)\b(.*)$", text, re.I)
    if not m:
        return None
    verb = m.group(2).lower()
    if verb not in _THIRD_TO_BASE and verb not in _PAST_VERBS:
        return None
    if v.child:
        return f"{_cap(v.he)} {m.group(1).lower()}{m.group(2).lower()}{m.group(3)}"
    return f"I {m.group(1).lower()}{m.group(2).lower()}{m.group(3)}"


_STATUS_START = re.compile(
    r"^(sexually active|married|single|divorced|widowed|retired|unemployed|up[- ]to[- ]date|allergic|"
    r"otherwise healthy|generally healthy|healthy|a (?:college|high school|university) student|"
    r"(?:college|high school|university) student|student)\b",
    re.I,
)


_DURATION = re.compile(
    r"^(?:I(?:'ve come in with| have| had|'ve had| came in with|'ve been having)|(?:my \w+|he|she) "
    r"(?:has|had|presents with)) "
    r"an? (?:(\d+|one|two|three|four|five|six|several)[- ](day|week|month|year)|(year|month|week)[- ]long)"
    r"[- ]history of (?:experiencing |having )?(.*)$",
    re.I,
)


def _durations(text: str, v: Voice) -> str:
    """ "I have a 3-week history of fatigue" -> "For the past 3 weeks, I've had fatigue"."""
    m = _DURATION.match(text)
    if not m:
        return text
    dur = (
        f"a {m.group(3).lower()}" if m.group(3) else _duration_phrase(m.group(1).lower(), m.group(2).lower())
    )
    who = "I've" if text.startswith("I") else f"{_cap(v.he)}'s"
    what = m.group(4)
    verb = "been" if re.match(r"\w+ing\b", what) and what.split()[0] not in _ING_ADJECTIVES else "had"
    return f"For the past {dur.removeprefix('a ')}, {who} {verb} {what}"


def first_person(sentence: str, v: Voice) -> tuple[str, bool]:
    """Best-effort first-person version of one source clause. Returns (answer, negative)."""
    answer, negative = _first_person(sentence, v)
    # Patients do not say "indicative of vertigo": that is the examiner's voice.
    answer = re.sub(r",?\s*(?:indicative of|suggestive of|consistent with|suggesting)\s+[^,.;]*", "", answer)
    return _end(_cap(_durations(answer.rstrip("."), v))), negative


def _first_person(sentence: str, v: Voice) -> tuple[str, bool]:
    text = _clean(sentence).rstrip(".")
    if not text:
        return "", False
    if re.match(r"^(?:the patient is )?(?:a )?non-?smoker\b", text, re.I):
        who = f"{_cap(v.he)} doesn't" if v.child else "I don't"
        return _end(f"{who} smoke"), True
    if m := re.match(r"^(only |otherwise |previously )?significant for (.*)$", text, re.I):
        subj = f"{_cap(v.he)} has" if v.child else "I have"
        text = f"{subj} {(m.group(1) or '').strip().lower()} {m.group(2)}".replace("  ", " ")
        return _end(text), False
    if m := re.match(r"^(?:a )?history of (.*)$", text, re.I):
        subj = f"{_cap(v.he)} has" if v.child else "I have"
        return _end(f"{subj} a history of {m.group(1)}"), False
    if _STATUS_START.match(text) and not v.child:
        lead = "I was" if text.lower().startswith("previously") else "I'm"
        if re.match(r"^(?:retired|(?:college |high school |university )?student)\b", text, re.I):
            lead += " a"
        return _end(_contract(_conjugate_after_i(_patient_pronouns(f"{lead} {_lc(text)}", v.sex)))), False
    if not _REPORT.match(text):
        tele = _telegraphic(text, v)
        if tele is not None:
            text = tele
    if v.child:
        out, neg = _first_person_parent(text, v)
    else:
        out, neg = _first_person_adult(text, v)
    return _end(_cap(out.strip())), neg


# ---------------------------------------------------------------------------------------------
# Negatives ("Denies chest pain, palpitations, or fever")
# ---------------------------------------------------------------------------------------------

_DENIAL = re.compile(
    r"^(?:(?:the patient|patient|he|she|(?:his |her |the |my )?(?:patient's |child's )?(?:roommates|mother|"
    r"parents?|father|family))\s+(?:also\s+)?(?:(?:reports?|notes?|mentions?|says)\s+(?:that\s+)?(?=no\b))?)?"
    r"(?:also\s+)?(?:specifically,?\s+)?"
    r"(?:denies|denied|does not report|did not report|do not report|reports no|mentions no|notes no|"
    r"describes no|has no history of|"
    r"has not had|no history of|no reports? of|negative for|without|no)\b\s*(.*)$",
    re.I,
)
_PREPOSITIONS = {"in", "of", "on", "with", "to", "for", "from", "at", "during", "after", "before", "by"}


def denial_items(text: str) -> list[str] | None:
    """The things denied, one per item, or None if `text` is not a denial."""
    t = _clean(text).rstrip(".")
    t = re.sub(r"^(?:on review|on questioning|upon further questioning),?\s*", "", t, flags=re.I)
    t = re.sub(r"^there(?:'s| is| are| were| has been| have been)\s+(?=no\b)", "", t, flags=re.I)
    m = _DENIAL.match(t)
    if not m:
        return None
    body = m.group(1)
    body = re.sub(r"\s*\([^)]*\)", "", body)
    body = re.sub(r"^(?:any |experiencing any |experiencing |having |a |an )", "", body, flags=re.I)
    body = re.sub(r"^(?:any )?history of ", "", body, flags=re.I)
    parts = [p.strip() for p in re.split(r",\s*", body) if p.strip()]
    items: list[str] = []
    for p in parts:
        p = re.sub(r"^(?:and|or|nor|no|any|a|an)\s+", "", p, flags=re.I)
        p = re.sub(r"^(?:no|any|a|an)\s+", "", p, flags=re.I)
        p = re.sub(r"\s+(?:reported|noted|mentioned|identified)$", "", p, flags=re.I)
        p = re.sub(
            r"\s+(?:were|was|have been|has been|is|are)\s+(?:noted|reported|observed|seen|identified)\b.*$",
            "",
            p,
            flags=re.I,
        )
        if re.search(r"\b(?:family|personal|prenatal|birth)\b.*\bhistory\b", p, re.I):
            items.append(p)
            continue
        if re.search(r"\s(?:or|and)\s", p):
            pieces = [re.sub(r"^(?:no|any)\s+", "", x, flags=re.I) for x in re.split(r"\s+(?:or|and)\s+", p)]
            if all(len(x.split()) <= 3 and not (set(x.lower().split()) & _PREPOSITIONS) for x in pieces):
                items += _share_words(pieces)
                continue
        if p:
            items.append(p)
    return items or None


_DEPENDENT = {"gain", "loss", "changes", "change", "increase", "decrease", "use", "abuse"}
_MODIFIERS = _words(
    """skin nipple visual auditory bowel bladder urinary hearing vision sensory motor mood sleep weight joint
    muscle chest abdominal back neck ear eye hand arm leg foot nasal breast vaginal rectal tobacco
    alcohol"""
)


def _share_words(pieces: list[str]) -> list[str]:
    """ "skin or nipple changes" -> skin changes, nipple changes; "weight loss or gain" -> weight gain."""
    last = pieces[-1].split()
    first = pieces[0].split()
    out = []
    for i, piece in enumerate(pieces):
        words = piece.split()
        if i < len(pieces) - 1 and len(words) == 1 and len(last) > 1 and words[0].lower() in _MODIFIERS:
            out.append(f"{piece} {last[-1]}")
        elif i > 0 and len(words) == 1 and len(first) > 1 and words[0].lower() in _DEPENDENT:
            out.append(" ".join([*first[:-1], piece]))
        else:
            out.append(piece)
    return out


def negative_answer(item: str, v: Voice) -> str:
    """ "chest pain" -> "No, I haven't had any chest pain." """
    x = _clean(item).rstrip(".")
    x = re.sub(r"^(?:any|a|an|history of|experiencing)\s+", "", x, flags=re.I)
    low = x.lower()
    subj, has, does = (v.he, "hasn't", "doesn't") if v.child else ("I", "haven't", "don't")
    if not v.child:
        x = _patient_pronouns(x, v.sex)
        low = x.lower()
    adult = not v.child
    if re.search(r"\ballerg", low):
        return f"No, {subj} {does} have any allergies."
    if "in the family" in low or "family history" in low:
        return (
            f"No, there's no {x}." if low.startswith("family history") else f"No, there haven't been any {x}."
        )
    if "exposure" not in low and adult:
        if re.search(r"\b(smok|tobacco|cigar)", low) and not re.search(r"\b(alcohol|drug)", low):
            return "No, I don't smoke."
        if re.search(r"\b(alcohol|drinking)\b", low) and not re.search(r"\b(drug|smok)", low):
            return "No, I don't drink alcohol."
        if re.search(r"\b(marijuana|cannabis)\b", low):
            return "No, I don't use marijuana."
        if re.search(r"\b(drug|substance)s?\b", low) and "medication" not in low:
            return "No, I don't use drugs."
    if m := re.match(r"^(?:known )?((?:family|personal|family or personal) history of .*)$", low):
        return f"No, there's no {m.group(1)}."
    if re.search(r"\b(?:family|prenatal|birth)\b.*\bhistory\b", low):
        return f"No, nothing significant in the {re.sub(r'^(?:other )?(?:significant |notable )?', '', x)}."
    if re.search(r"\bmedical (?:or surgical )?history\b|\bmedical (?:problems|issues)\b", low):
        return "No, I've been healthy." if adult else f"No, {v.he} has been healthy."
    if re.search(r"\ballerg", low):
        return f"No, {subj} {does} have any allergies."
    if re.search(r"\btravel", low) and re.search(r"\bsick\b", low):
        return f"No, {subj} {has} travelled recently or been around anyone who is sick."
    if re.search(r"\btravel", low):
        return f"No, {subj} {has} travelled recently."
    if re.search(r"\bsick contacts?\b|contact with sick|sick individuals", low):
        return f"No, {subj} {has} been around anyone who is sick."
    if re.match(r"^(?:other|additional|further)\b", low):
        return "No, nothing else." if adult else f"No, nothing else that I've noticed in {v.him}."
    if re.match(r"^changes? in\b", low):
        return f"No, I haven't noticed any {x}."
    if re.match(r"^new medications?\b", low):
        return f"No, {subj} {has} started any {x}."
    if re.search(r"\bmedications?\b", low):
        return "No, I'm not taking any medications." if adult else f"No, {v.he} isn't taking any medications."
    return f"No, {subj} {has} had any {x}."


# ---------------------------------------------------------------------------------------------
# Classifying source sentences
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"(\bnot provided\b|\binformation not\b|\bnot specified\b|\bdoes not specify\b|\bnot applicable\b|"
    r"^n/?a\b|\bno mention\b|\b(?:was|were|has been|is|are) (?:not )?mentioned\b|\bmentioned$|"
    r"\bdata not\b|\bunable to provide\b|\bdidn't provide\b|\bdid not provide\b|\bdue to the age\b|"
    r"\b(?:history|information|details?|data|habits?)\b[^.]*\bprovided$|"
    r"\bno (?:additional |other |relevant |specific |detailed |pertinent |notable )?"
    r"(?:information|details?)\b|\bno pertinent\b|\bno relevant social\b|\bno significant social\b|"
    r"\bno detailed\b)",
    re.I,
)
# What only an examiner can say: never a fact, whoever speaks.
_OBSERVATION = re.compile(
    r"(\bphysical examination\b|\bon examination\b|\bis noted to be\b|"
    r"\bexhibits\b|\boriented to\b|\bvital signs\b|"
    r"\bpulse (?:is|of)\b|\btemperature of\b|\brespirations (?:are|of)\b|\bhealthy appearance\b|"
    r"\bavoids questions\b|\bthe rest of the examination\b|\bduring the physical exam\b|"
    r"\bimproves with oxygen\b|\bfontanelle\b|\bpupils\b|\bheard at\b|\bclear to auscultation\b|"
    r"\b(?:is|are) noted\b|\bno abnormalities noted\b|\bduring (?:the )?(?:history taking|interview|exam)\b)",
    re.I,
)
_GENERAL_NEGATIVE = re.compile(
    r"^(?:all (?:other )?systems|all systems review|no (?:additional|other|further) (?:systemic )?"
    r"(?:symptoms|complaints)|no significant findings|no other abnormalities|unremarkable except|"
    r"(?:the )?(?:patient|he|she) (?:did not|does not|didn't) report any other|"
    r"(?:the patient |patient |he |she )?denies any other|"
    r"no other (?:similar|systemic)|no additional symptoms)",
    re.I,
)
_NO_HISTORY = re.compile(
    r"^(?:the patient's |patient's )?"
    r"(?:no|unremarkable|otherwise healthy|previously healthy|generally healthy)"
    r"\s*(?:significant |notable |other significant )?(?:past )?(?:medical|psychiatric)?\s*"
    r"(?:or (?:surgical|psychiatric) )?"
    r"(?:history)?(?: provided| reported)?\.?$",
    re.I,
)

_NO_HISTORY_ANY = re.compile(
    r"\bno (?:significant |notable |other significant |prior |known )?(?:past )?(?:medical|psychiatric)"
    r"(?: or (?:surgical|psychiatric))? history\b|\bno significant (?:past )?medical (?:issues|problems)\b|"
    r"\bno significant (?:previous )?medical history\b|\bunremarkable past medical history\b|"
    r"\bno (?:significant )?(?:previous|past) medical history\b",
    re.I,
)
_OBSERVING_REPORT = re.compile(
    rf"^(?:{_PATIENT_SUBJECT}\s+)?(?:also\s+)?(?:{_REPORT_VERBS}|complains)\b|"
    r"^(?:the |his |her )?(?:patient's )?"
    rf"(?:{_PARENT_WORDS}|wife|husband|family|roommates|daughter|son)\b",
    re.I,
)


# What a parent can also see ("she appears more tired"), but an adult does not say of himself.
_LOOKS = re.compile(
    r"\bappears?\b|\bpresents as\b|\bshows? signs\b|\bshowing signs\b|^shows\b|^alert\b|\bis somnolent\b",
    re.I,
)


def classify(sentence: str, parent_speaks: bool = False) -> str:
    """ "fact", "placeholder", "observation" or "general_negative"."""
    s = _clean(sentence)
    if _GENERAL_NEGATIVE.match(s):
        return "general_negative"
    if _PLACEHOLDER.search(s.rstrip(".")):
        return "placeholder"
    if _OBSERVING_REPORT.match(s):
        return "fact"
    if _OBSERVATION.search(s) or (_LOOKS.search(s) and not parent_speaks):
        return "observation"
    return "fact"


_CLAUSE_BREAK = re.compile(
    r"\s*;\s*"
    r"|,?\s+but\s+(?=(?:denies|reports|notes|mentions|says|no|not)\b)"
    r"|,?\s+and\s+(?=(?:reports|mentions|notes|denies|admits|does not|doesn't|has not|is not)\b)"
    r"|,\s+and\s+(?=(?:the|his|her|my|she|he|it|there)\s)"
    r"|,?\s+and\s+(?=(?:enjoys|drinks|smokes|works|lives|uses|takes|attends|plays)\b)"
    r"|,\s+(?=no (?:history of|known)\b)"
    r"|,\s+(?=(?:(?:frequently|occasionally|regularly|rarely|often|currently|also|now)\s+)?"
    r"(?:denies|reports|drinks|smokes|works|lives|uses|takes|enjoys|attends|consumes|plays|admits|"
    r"has recently|is a|retired|married)\b)",
    re.I,
)


def clauses(sentence: str) -> list[str]:
    """One sentence -> the clauses that each carry one fact ("Non-smoker, drinks wine occasionally")."""
    s = _clean(sentence).rstrip(".")
    s = re.sub(r"^((?:a )?non-?smoker|smoker)\s*(?:,|\band\b)\s*", r"\1; ", s, flags=re.I)
    s = re.sub(
        r",?\s+and\s+(she|he|the patient)\s+(mentions|reports|notes|states|says)\b", r"; \1 \2", s, flags=re.I
    )
    parts = [p.strip(" ,") for p in _CLAUSE_BREAK.split(s)]
    return [p for p in parts if p]


# ---------------------------------------------------------------------------------------------
# Keywords
# ---------------------------------------------------------------------------------------------

_STOP = _words(
    """a an the and or but nor of in on at to for from with without by as into onto over under about after
    before during since until while than then that this these those there here it its is are was were be
    been being am has have had having do does did doing not no yes any some all each every other another
    such own same so too very can could may might must shall should will would i me my mine myself we us
    our you your he him his she her hers they them their who whom which what when where why how also just
    only still now ever never again up down out off per x patient patients reports reported report notes
    noted mentions mentioned states describes described complains complaining presents presented denies
    denied history past recent recently experiencing experience experienced noticed notice significant
    associated currently current prior previous previously several few multiple one two three four five six
    seven eight nine ten days day weeks week months month years year hours hour ago time times approximately
    tend tends significantly specifically particularly especially indicative suggestive consistent
    about around due well known mild moderate severe increased decreased increasing decreasing left right
    both side around occasional occasionally new onset sudden episode episodes since like felt feel feeling
    had got get gets getting been go went started start starting began begin developed develop also i've
    i'm don't haven't hasn't isn't doesn't didn't wasn't it's there's he's she's i'd i'll noticed seen
    medical family social symptoms symptom other any further including include includes relevant overall
    baby son daughter child infant newborn mother father parents parent boy girl additionally recalls
    recounts cites admits believes experiences describes reveals mentioned notes states says said"""
)
_LAY = {
    "diplopia": ["double vision", "seeing double"],
    "double vision": ["seeing double"],
    "dyspnea": ["shortness of breath", "breathless"],
    "shortness of breath": ["breathless", "short of breath"],
    "pruritus": ["itching", "itchy"],
    "pruritic": ["itchy", "itching"],
    "diarrhea": ["loose stools", "runny stools"],
    "vomiting": ["throwing up", "vomit"],
    "nausea": ["feel sick", "nauseous"],
    "dysuria": ["pain passing urine", "burning urine"],
    "hematuria": ["blood in urine"],
    "fever": ["temperature", "hot"],
    "fevers": ["temperature", "fever"],
    "fatigue": ["tired", "tiredness"],
    "palpitations": ["heart racing"],
    "epistaxis": ["nosebleeds", "nose bleeding"],
    "headache": ["head pain"],
    "weight loss": ["losing weight"],
    "night sweats": ["sweating at night"],
    "smoking": ["smoke", "cigarettes"],
    "smoker": ["smoke", "smoking", "cigarettes"],
    "smokes": ["smoke", "smoking", "cigarettes"],
    "alcohol": ["drink", "drinking"],
    "drinks": ["alcohol", "drinking"],
    "medications": ["medicines", "tablets"],
    "medication": ["medicines", "tablets"],
    "allergies": ["allergic"],
    "works": ["job", "work", "occupation"],
    "travel": ["travelled", "trip"],
    "rash": ["spots", "skin"],
    "jaundice": ["yellow skin", "yellow eyes"],
    "syncope": ["fainting", "passed out"],
    "seizure": ["fits", "convulsions"],
    "seizures": ["fits", "convulsions"],
    "abdominal pain": ["stomach pain", "tummy pain", "belly pain"],
    "chest pain": ["pain in the chest"],
    "cough": ["coughing"],
    "urination": ["passing urine", "peeing"],
    "micturition": ["passing urine"],
    "bowel movements": ["stools", "bowels"],
    "sexually active": ["sex", "partners", "sexual partners"],
}


def keywords_for(text: str, dx: DxNames, extra: list[str] | None = None, limit: int = 12) -> list[str]:
    """Content words and bigrams of `text` (source words, lay terms), never a diagnosis word."""
    words = re.findall(r"[a-z][a-z0-9'-]*", _clean(text).lower())
    runs: list[list[str]] = [[]]
    for w in words:
        w = re.sub(r"'s$", "", w.strip("'-"))
        if not w or w in _STOP or len(w) < 3 or w.isdigit():
            runs.append([])
        else:
            runs[-1].append(w)
    out: list[str] = []

    def add(k: str) -> None:
        k = k.strip()
        if k and k not in out and not dx.in_keyword(k) and not dx.named_in(k) and len(k) <= 60:
            out.append(k)

    for phrase in extra or []:
        add(phrase.lower())
    for run in runs:
        for a, b in itertools.pairwise(run):
            add(f"{a} {b}")
    for run in runs:
        for w in run:
            add(w)
    lay: list[str] = []
    joined = " ".join(words)
    for term, alts in _LAY.items():
        if re.search(rf"\b{re.escape(term)}\b", joined):
            lay += alts
    for k in lay:
        add(k)
    return out[:limit]


# ---------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------

_CATEGORY_PREFIX = {
    "presenting_complaint": "pc",
    "hpi": "hpi",
    "past_history": "pmh",
    "medication": "med",
    "allergies": "allergy",
    "family": "fam",
    "social": "soc",
    "obstetric": "obs",
    "developmental": "dev",
    "immunisation": "imm",
    "nutrition": "nutr",
    "systems_review": "ros",
    "ice": "ice",
}

_CATEGORY_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "family",
        re.compile(
            r"\bfamily history\b|\bin the family\b|"
            r"\b(?:mother|father|brother|sister|uncle|aunt|grandmother|grandfather|sibling)(?:'s)?\b"
            r"[^.]*\b(?:history of|died|death|diagnosed|similar (?:problems|issues|illness|symptoms)|"
            r"suicide|heart condition|disease|arthritis|psoriasis|cancer|stenosis|chickenpox)\b",
            re.I,
        ),
    ),
    ("allergies", re.compile(r"\ballerg", re.I)),
    ("immunisation", re.compile(r"\bimmuni[sz]|\bvaccin", re.I)),
    ("developmental", re.compile(r"\bmilestones?\b", re.I)),
    (
        "obstetric",
        re.compile(
            r"\bgravida\b|\bpregnan|\bgestation\b.*\b(?:weeks?)\b|\bcesarean\b|\bpostpartum\b|"
            r"\bmenarche\b|\bmenses\b|\bchildbirth\b|\bconceive\b",
            re.I,
        ),
    ),
    (
        "medication",
        re.compile(
            r"\bmedications?\b|\bregimen\b|\btakes\b|\btaking\b|\bprescribed\b|\bcurrently on\b|"
            r"\binhaler\b|\bstarted on\b|\binsulin\b",
            re.I,
        ),
    ),
    (
        "social",
        re.compile(
            r"\bsmok|\bcigarette|\btobacco\b|\bdrug use\b|\bmarijuana\b|\bpack[- ]years?\b|"
            r"\bsexually active\b|\bcondoms?\b|\bworks as\b|"
            r"\blives (?:with|alone)\b|\billicit\b|\bcocaine\b|\balcohol\b|\bbeers?\b|\bwine\b|"
            r"\bincarcerat|\bprison\b|\boccupation\b|\bstudent\b",
            re.I,
        ),
    ),
    (
        "past_history",
        re.compile(
            r"\bhistory of\b|\bdiagnosed\b|\bmedical history\b|\bsurgery\b|\bunderwent\b|"
            r"\bhospitali[sz]",
            re.I,
        ),
    ),
]

_SECTION_CATEGORY = {
    "History": "hpi",
    "Past_Medical_History": "past_history",
    "Social_History": "social",
    "Review_of_Systems": "systems_review",
    "Current_Medications": "medication",
    "Medications": "medication",
    "Drug_History": "medication",
    "Family_History": "family",
    "Allergies": "allergies",
}
# Sections whose sentences may move to a more specific category (a smoking history inside the HPI).
_RECATEGORISE = {"hpi", "past_history", "systems_review", "social"}


def category_for(section_category: str, text: str, v: Voice) -> str:
    if section_category not in _RECATEGORISE:
        return section_category
    for cat, rx in _CATEGORY_RULES:
        if rx.search(text):
            if cat == "obstetric" and (v.sex != "female" or v.child):
                continue  # a child's birth history is past history
            if cat == section_category:
                return cat
            if section_category == "social" and cat in ("past_history", "medication"):
                continue
            if (
                section_category == "hpi"
                and cat == "social"
                and not re.search(
                    r"\bsmok|\bcigarette|\bpack[- ]years?\b|\bsexually\b|\bcondoms?\b|\bworks as\b|"
                    r"\blives\b|\billicit\b|\bdrinks?\b|\bdrinking\b|"
                    r"\bcocaine\b|\bincarcerat|\bprison\b|\bdrinks\b",
                    text,
                    re.I,
                )
            ):
                continue
            if section_category == "past_history" and cat == "social" and "," in text:
                continue  # "Obesity, type II diabetes, smoking history": a list of conditions
            if (
                section_category == "hpi"
                and cat in ("medication", "obstetric")
                and not re.search(
                    r"\bmedications?\b|\bregimen\b|\bgravida\b|\btakes\b|\bcurrently (?:on|taking)\b|"
                    r"\bhas been on\b",
                    text,
                    re.I,
                )
            ):
                continue
            if (
                section_category in ("hpi", "systems_review")
                and cat == "past_history"
                and not re.search(
                    r"\bmedical history\b|\bdiagnosed\b|\bsurgery\b|\bunderwent\b|\bhospitali|"
                    r"\b(?:has|had|have) an? (?:significant |long |known )?history of\b",
                    text,
                    re.I,
                )
            ):
                continue
            return cat
    return section_category


@dataclass
class DraftFact:
    category: str
    answer: str
    source: str
    keywords: list[str]
    negative: bool = False
    volunteered: bool = False
    critical: bool = False
    section: str = ""
    # What the leak check reads: the denied item itself, not the whole "denies X, Y or Z" clause.
    checked: str = ""


_SIGN = re.compile(
    r"\b(reflex(?:es)?|murmur|conjunctiva|icterus|hypotension|tachypnea|tachycardia|fasciculations?|rigidity|"
    r"blunted affect|affect\b|palpation|retractions|nasal flaring|grunting|upon examination|during exam|"
    r"noticed upon|screening tests?|umbilication|violaceous|vesiculopustular|maculopapular|mucositis|"
    r"asterixis|"
    r"not oriented|psychomotor|disorganized speech|delusions?|perceptual|excoriations|sparing of|"
    r"hypopigmented macules|apathy|pedal edema|tortuous veins|extended .* resting position|"
    r"flexed, adducted|hand grip|ability to move)\b",
    re.I,
)
# Behaviours that read well as "I've also been <x>" ("Pacing", "Yelling and crying").
_GERUNDS = _words(
    """yelling crying pacing breaking vomiting coughing wheezing sweating fainting choking snoring
    limping staring hearing seeing sleeping drinking smoking"""
)
_SIGN_PRIMARY = re.compile(r"\b(murmur|blood pressure|reflex|papules|maculopapular|umbilication)\b", re.I)


class FactBuilder:
    """Collects facts for one case, dropping and reporting what must not be said."""

    def __init__(self, dx: DxNames, v: Voice, info: CaseImport) -> None:
        self.dx = dx
        self.v = v
        self.info = info
        self.facts: list[DraftFact] = []
        self._answers: set[str] = set()
        self._general_negative = False

    def _leak(self, *texts: str) -> str | None:
        for t in texts:
            if hit := self.dx.named_in(t):
                return hit
        return None

    def add(self, draft: DraftFact) -> None:
        if not draft.answer:
            return
        if hit := self._leak(draft.checked or draft.source, draft.answer):
            self.info.dropped_diagnosis.append(f"{draft.source!r} (mentions {hit!r})")
            return
        key = norm(draft.answer)
        if key in self._answers:
            return
        if not draft.keywords:
            draft.keywords = keywords_for(draft.category.replace("_", " "), self.dx) or ["anything else"]
        self._answers.add(key)
        self.facts.append(draft)

    def general_negative(self, source: str, section: str) -> None:
        if self._general_negative:
            return
        self._general_negative = True
        answer = (
            "No, nothing else has been bothering me."
            if not self.v.child
            else (f"No, nothing else that I've noticed in {self.v.him}.")
        )
        kws = ["anything else", "other symptoms", "any other problems", "everything else", "other complaints"]
        self.add(DraftFact("systems_review", answer, source, kws, negative=True, section=section))

    def sentence(self, sentence: str, section_category: str, section: str) -> None:
        if (
            section_category == "past_history"
            and _NO_HISTORY_ANY.search(sentence)
            and not re.search(r"\b(?:except|other than|apart from|aside from|but)\b", sentence, re.I)
        ):
            self._no_history(sentence, section)  # "No significant past medical history provided."
            return
        kind = classify(sentence, self.v.child)
        if kind == "placeholder":
            self.info.dropped_placeholder.append(f"{section}: {sentence!r}")
            return
        if kind == "observation":
            self.info.dropped_observation.append(f"{section}: {sentence!r}")
            return
        if kind == "general_negative":
            self.general_negative(sentence, section)
            return
        if section_category == "past_history" and _NO_HISTORY.match(_clean(sentence)):
            self._no_history(sentence, section)
            return
        for clause in clauses(sentence):
            self.clause(clause, sentence, section_category, section)

    def _no_history(self, source: str, section: str) -> None:
        if self.v.child:
            answer = f"No, {self.v.he} has been healthy. Nothing serious before this."
        else:
            answer = "No, I've been healthy. I don't have any medical problems."
        kws = [
            "medical history",
            "past illnesses",
            "medical problems",
            "chronic illness",
            "hospital",
            "operations",
            "surgery",
            "health problems",
        ]
        self.add(DraftFact("past_history", answer, source, kws, negative=True, section=section))

    def clause(self, clause: str, source: str, section_category: str, section: str) -> None:
        kind = classify(clause, self.v.child)
        if kind == "placeholder":
            self.info.dropped_placeholder.append(f"{section}: {clause!r}")
            return
        if kind == "general_negative" or re.search(
            r"\bany other (?:\w+ )?(?:symptoms|complaints)\b", clause, re.I
        ):
            self.general_negative(clause, section)
            return
        if _NO_HISTORY_ANY.search(clause) and not re.search(
            r"\b(?:except|other than|apart from|aside from|but)\b", clause, re.I
        ):
            self._no_history(clause, section)
            return
        cat = category_for(section_category, clause, self.v)
        # "No recent antibiotics apart from levofloxacin, no vomiting": the exception is a positive
        # fact ("Only levofloxacin"); the other items stay denials.
        ex = re.match(
            r"^(.*?),?\s+(?:apart from|except for|except|other than|aside from)\s+([^,]*)(?:,\s*(.*))?$",
            clause,
            re.I,
        )
        if ex and denial_items(ex.group(1)) is not None:
            kept = re.sub(r"^(?:noted|known|the)\s+", "", ex.group(2)).strip()
            if not self.v.child:
                kept = _patient_pronouns(kept, self.v.sex)
            before = denial_items(ex.group(1)) or []
            if not _NO_HISTORY_ANY.search(ex.group(1)) and len(before) > 1:
                self.clause(", ".join(["No " + before[0], *before[1:-1]]), source, section_category, section)
            self.add(
                DraftFact(
                    category_for(section_category, kept, self.v),
                    _end(f"Only {kept}"),
                    clause,
                    keywords_for(f"{before[-1] if before else ''} {kept}", self.dx),
                    section=section,
                    checked=kept,
                )
            )
            if ex.group(3):
                self.clause(f"No {ex.group(3)}", source, section_category, section)
            return
        items = denial_items(clause)
        if items is not None and not re.match(r"^no\s+(?:longer|change)\b", clause, re.I):
            for item in items:
                if re.match(
                    r"^(?:other|additional|further)\s+(?:\w+\s+)?(?:symptoms|complaints|problems|issues)\b",
                    item,
                    re.I,
                ):
                    self.general_negative(clause, section)
                    continue
                if re.search(
                    r"^(?:normal|regular|good|otherwise|healthy)\b|\bup[- ]to[- ]date\b|\bappropriate\b",
                    item,
                    re.I,
                ):
                    answer, _ = first_person(item, self.v)  # "no known allergies, normal birth history"
                    self.add(
                        DraftFact(
                            category_for(section_category, item, self.v),
                            answer,
                            clause,
                            keywords_for(item, self.dx),
                            section=section,
                        )
                    )
                    continue
                answer = negative_answer(item, self.v)
                cat_item = category_for(section_category, item, self.v)
                kws = keywords_for(item, self.dx)
                self.add(
                    DraftFact(cat_item, answer, clause, kws, negative=True, section=section, checked=item)
                )
            return
        answer, negative = first_person(clause, self.v)
        kws = keywords_for(clause, self.dx)
        self.add(DraftFact(cat, answer, clause, kws, negative=negative, section=section))

    def medications(self, items: list[str], section: str) -> None:
        names = [_lc(_clean(str(x))) for x in items if _clean(str(x))]
        if not names:
            return
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        subj = f"{_cap(self.v.he)} takes" if self.v.child else "I take"
        answer = f"{subj} {listed}."
        kws = ["medications", "medicines", "tablets", "drugs", "pills", *[n.lower() for n in names]]
        self.add(
            DraftFact(
                "medication", answer, "; ".join(names), keywords_for("", self.dx, kws, 16), section=section
            )
        )

    def symptom(self, text: str, primary: bool) -> None:
        t = _clean(text).rstrip(".")
        if not t:
            return
        v = self.v
        section = "Primary_Symptom" if primary else "Secondary_Symptoms"
        if primary:
            if _SIGN_PRIMARY.search(t):
                told = re.search(r"murmur|pressure|reflex", t, re.I)
                answer = f"The doctors told me about {_lc(t)}." if told else f"I noticed {_lc(t)}."
            elif m := re.match(rf"^({_PARENT_WORDS})\s+reports?\s+(.*)$", t, re.I):
                answer = f"My {m.group(1).lower()} is worried about {m.group(2)}."
            else:
                answer = f"My main problem is {_lc(t)}." if not v.child else f"My main worry is {_lc(t)}."
            kws = keywords_for(t, self.dx)
            self.add(
                DraftFact(
                    "presenting_complaint", answer, t, kws, volunteered=True, critical=True, section=section
                )
            )
            return
        if _SIGN.search(t):
            self.info.dropped_signs.append(repr(t))
            return
        low = t.lower()
        if re.fullmatch(r"(?:sudden|acute|gradual|insidious)(?:[- ]onset)?|onset", low):
            self.info.dropped_placeholder.append(f"{section}: {t!r} (describes the onset only)")
            return
        if m := re.match(r"^not (\w+)$", low):
            answer = f"No, it isn't {m.group(1)}."
            self.add(DraftFact("hpi", answer, t, keywords_for(t, self.dx), negative=True, section=section))
            return
        if items := (denial_items(t) if re.match(r"^(no|without|denies)\b", low) else None):
            for item in items:
                self.add(
                    DraftFact(
                        category_for("hpi", item, v),
                        negative_answer(item, v),
                        t,
                        keywords_for(item, self.dx),
                        negative=True,
                        section=section,
                    )
                )
            return
        cat = category_for("hpi", t, v)
        if re.match(r"^(?:mother|father|brother|sister|uncle|aunt|sibling|grandmother|grandfather)\b", low):
            answer = f"{_cap(v.his) if v.child else 'My'} {t[:1].lower()}{t[1:]}."
            cat = "family"
        elif _telegraphic(t, v) is not None:
            answer = first_person(t, v)[0]
        elif m := re.match(r"^(unaware|aware|unable|unsure|worried|concerned)\b(.*)$", low):
            answer = f"{_cap(v.he)} is {_lc(t)}." if v.child else f"I'm {_lc(t)}."
        elif re.match(r"^(?:exclusively )?(?:breast|bottle)[- ]?fed\b", low):
            answer = f"{_cap(v.he)} is {_lc(t)}."
        elif m := re.match(r"^(?:family|familial) history of (.*)$", t, re.I):
            answer = f"There is a family history of {m.group(1)}."
            cat = "family"
        elif re.match(r"^(?:worse|better)\b", low):
            answer = f"It's {_lc(t)}."
        elif m := re.match(r"^history of (.*)$", t, re.I):
            answer = f"{_cap(v.he)} has had {m.group(1)}." if v.child else f"I've had {m.group(1)}."
        elif _is_clause(t) or re.match(r"^(?:mother|father|patient|parents?)\b", low):
            answer = first_person(t, v)[0]
        elif (m := re.match(r"^(\w+ing)\b", low)) and m.group(1) in _GERUNDS:
            answer = f"{_cap(v.he)} has also been {_lc(t)}." if v.child else f"I've also been {_lc(t)}."
        else:
            answer = f"{_cap(v.he)} has also had {_lc(t)}." if v.child else f"I've also had {_lc(t)}."
        self.add(DraftFact(cat, answer, t, keywords_for(t, self.dx), section=section))


# ---------------------------------------------------------------------------------------------
# Vital signs
# ---------------------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"


def parse_vitals(raw: Any, info: CaseImport) -> dict[str, Any]:
    """Numbers into the schema's fields; anything else (and qualifiers) into `note`."""
    vitals: dict[str, Any] = {}
    notes: list[str] = []
    if not isinstance(raw, dict):
        if raw not in (None, {}):
            notes.append(_clean(str(raw)))
            info.vitals_prose.append(_clean(str(raw)))
        return {"note": "; ".join(notes)} if notes else {}

    def prose(label: str, value: str) -> None:
        notes.append(f"{label}: {value}")
        info.vitals_prose.append(f"{label}: {value}")

    def qualifier(label: str, value: str) -> None:
        # "120 bpm (normal for age)": the number is used, the remark kept for the trainee.
        for q in re.findall(r"\(([^)]*)\)", value):
            if not re.search(r"°|\d", q):
                notes.append(f"{label}: {q}")

    for key, value in raw.items():
        label = _human(key)
        k = key.lower()
        if isinstance(value, dict):
            # "Blood_Pressure": {"Sitting": ..., "Standing": ...}: the first reading is the value.
            for i, (sub, reading) in enumerate(value.items()):
                sub_label = f"{label} ({_human(sub).lower()})"
                text = _clean(str(reading))
                m = re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", text)
                if i == 0 and m and "blood_pressure" in k and "bp_systolic" not in vitals:
                    vitals["bp_systolic"], vitals["bp_diastolic"] = int(m.group(1)), int(m.group(2))
                    info.vitals_parsed.append(f"{sub_label}: {text}")
                notes.append(f"{sub_label}: {text}")
            continue
        if isinstance(value, bool):
            if value and "normal" in k:
                notes.append("All vital signs within normal limits")
                info.vitals_prose.append(f"{label}: {value}")
            continue
        text = _clean(str(value))
        field_name, number = _vital_field(k, text)
        if field_name and number is not None and field_name not in vitals:
            vitals[field_name] = number
            info.vitals_parsed.append(f"{label}: {text}")
            if field_name == "bp_systolic":
                m = re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", text)
                assert m is not None
                vitals["bp_diastolic"] = int(m.group(2))
                if "right" in k or "left" in k:
                    notes.append(
                        f"Blood pressure measured on the {label.lower().split('blood pressure ')[-1]}"
                    )
            qualifier(label, text)
            if field_name == "spo2":
                rest = re.sub(r"^\s*\d+\s*%\s*", "", text)
                if rest and rest.lower() != "on room air":
                    notes.append(f"SpO2: {rest}")
        else:
            prose(label, text)
    if vitals.get("bp_systolic") is not None and vitals["bp_diastolic"] >= vitals["bp_systolic"]:
        notes.append(f"Blood pressure: {vitals.pop('bp_systolic')}/{vitals.pop('bp_diastolic')} (as given)")
    if notes:
        vitals["note"] = "; ".join(dict.fromkeys(notes))
    return vitals


_VITAL_LIMITS = {
    "temperature_c": (25, 45),
    "heart_rate": (0, 300),
    "resp_rate": (0, 120),
    "bp_systolic": (0, 300),
    "spo2": (0, 100),
    "weight_kg": (0.1, 400),
    "height_cm": (1, 250),
}


def _vital_field(key: str, text: str) -> tuple[str | None, float | int | None]:
    low = text.lower()
    name: str | None = None
    number: float | int | None = None
    if "temp" in key:
        name = "temperature_c"
        if m := re.search(_NUM + r"\s*°?\s*c\b", low):
            number = round(float(m.group(1)), 1)
        elif m := re.search(_NUM + r"\s*°?\s*f\b", low):
            number = round((float(m.group(1)) - 32) * 5 / 9, 1)
    elif "blood_pressure" in key or key in ("bp",):
        name = "bp_systolic"
        if m := re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", low):
            number = int(m.group(1))
    elif key in ("heart_rate", "pulse", "hr", "pulse_rate"):
        name = "heart_rate"
        if m := re.match(r"\s*(\d{2,3})\b", low):
            number = int(m.group(1))
    elif key.startswith("resp"):
        name = "resp_rate"
        if m := re.match(r"\s*(\d{1,3})\b", low):
            number = int(m.group(1))
    elif key in ("oxygen_saturation", "so2", "spo2", "sao2", "o2_saturation"):
        name = "spo2"
        if m := re.match(r"\s*(\d{2,3})\s*%", low):
            number = int(m.group(1))
    elif key == "weight":
        name = "weight_kg"
        if m := re.search(_NUM + r"\s*kg\b", low):
            number = float(m.group(1))
    elif key == "height":
        name = "height_cm"
        if m := re.search(_NUM + r"\s*cm\b", low):
            number = float(m.group(1))
    if name and number is not None:
        lo, hi = _VITAL_LIMITS[name]
        if not lo <= number <= hi:
            return name, None
    return name, number


# ---------------------------------------------------------------------------------------------
# Normal or abnormal?
# ---------------------------------------------------------------------------------------------

_ABNORMAL_WORDS = re.compile(
    r"\b(decreas\w*|increas\w*|reduc\w*|diminish\w*|tender\w*|swell\w*|swollen|mass(?:es)?|enlarg\w*|"
    r"distend\w*|distension|dullness|crackles|wheez\w*|rales|rhonchi|murmurs?|tachy\w*|brady\w*|lesions?|"
    r"rash|ulcers?|ulcerat\w*|erythem\w*|jaundice|icter\w*|pallor|pale|cyanosis|edema|oedema|weak\w*|"
    r"atroph\w*|ptosis|confus\w*|disorient\w*|letharg\w*|rigid\w*|tremor|nystagmus|positive|elevated|"
    r"limited|unable|inability|deformit\w*|shortened|asymmetr\w*|irregular\w*|\w+megaly|lymphadenopathy|"
    r"petechiae|bruis\w*|blisters?|bleeding|discharge|retractions?|hyper\w+|hypo\w+|fixed split|bruit|"
    r"crepitus|spots|papules?|macules?|plaques?|nodules?|cysts?|vesic\w*|pustules?|scales?|scaly|crust\w*|"
    r"excoriations?|fractures?|dislocation|effusion|opacit\w*|infiltrat\w*|consolidation|tumou?r|thicken\w*|"
    r"dilat\w*|narrow\w*|obstruct\w*|stones?|calcif\w*|abnormal\w*|impaired|slurred|slow\w*|sluggish|tense|"
    r"failed|cloudy|poor\w*|agitat\w*|bizarre|odd|magical|hallucinat\w*|delusion\w*|irritab\w*|withdrawn|"
    r"constricted|blunted|apathy|refuses|low|high|prolonged|deficien\w*|atypical|necro\w*|growth|"
    r"infection|inflamm\w*|lytic|hemorrhag\w*|haemorrhag\w*|bleed\w*|compression|atresia|absence|"
    r"mutation|monoclonal|immature|lymphocytosis|thrombocytosis|smudge|dysplastic|cavity|syrinx|"
    r"acantholysis|deposition|reflux|destruction|granulation|ground[- ]glass|shunt|double bubble|"
    r"transition zone|narrowing|variable decelerations|pleural|ascites|pustular|fluid|aborted|"
    r"spikes|sharp waves|free mediastinal air|perforation|hearing loss|purulent|cloudy|reddish|amber|"
    r"numerous|too numerous|gram[- ](?:positive|negative)|diplococci|rods|heavy|ataxi\w*|dysmetria|obese|"
    r"obesity|hirsutism|accessory muscles|patent|cataracts?|leaf-like|overgrowth|osteophytes?|widening|"
    r"decelerations|hemoperitoneum|disruption|herniation|impinging|demyelinat\w*|proliferative|"
    r"elevation|elevated|anaemi\w*|anemi\w*|shifting|fluid wave|rebound|guarding|asterixis|icterus|"
    r"hepatosplenomegaly|lymph node|nodes|confused|somnolent|apnea|apnoea|stridor|distress|grunting|"
    r"thrombocytosis|smudge|ulcerative|purulent|blood|bruit|edematous)\b",
    re.I,
)
_PATHOLOGY_KEYS = re.compile(
    r"adenopathy|megaly|fascicul|tender|nystagm|edema|oedema|discharge|mass|rash|lesion|murmur|swelling|"
    r"tremor|rigidity|jaundice|antibod|antigen|igm|igg|toxin|gonorrh|amphetamine|hiv|syphilis|chlamydia|"
    r"lymphadenopathy|hepatomegaly|cervical_motion",
    re.I,
)

# Adult reference ranges (value in the unit most of the data uses) for the analytes whose numbers
# decide "abnormal" when the source gives no flag.
_RANGES: list[tuple[re.Pattern[str], float, float, str]] = [
    (re.compile(r"^(?:serum )?(?:sodium|na)$"), 135, 145, ""),
    (re.compile(r"^(?:serum )?(?:potassium|k)$"), 3.5, 5.1, ""),
    (re.compile(r"^(?:hemoglobin|haemoglobin|hb)$"), 12, 17.5, "g/dl"),
    (
        re.compile(r"^(?:wbc|leukocyte count|white blood cell count|total wbc count|total count wbc)$"),
        4000,
        11000,
        "",
    ),
    (re.compile(r"^(?:platelets|platelet count)$"), 150000, 450000, ""),
    (re.compile(r"^(?:glucose|glu|serum glucose|blood glucose)$"), 70, 140, "mg/dl"),
    (re.compile(r"^(?:creatinine|cr)$"), 0.5, 1.3, "mg/dl"),
    (re.compile(r"^(?:bun|urea nitrogen|serum urea nitrogen)$"), 7, 21, "mg/dl"),
    (re.compile(r"^(?:bilirubin total|total bilirubin|bilirubin)$"), 0.1, 1.2, "mg/dl"),
    (re.compile(r"^(?:ast|alt)$"), 0, 45, ""),
    (re.compile(r"^(?:alkaline phosphatase|alp)$"), 35, 130, ""),
    (re.compile(r"^(?:esr|erythrocyte sedimentation rate)$"), 0, 25, ""),
    (re.compile(r"^(?:calcium|ca|total serum calcium)$"), 8.5, 10.5, "mg/dl"),
    (re.compile(r"^(?:albumin)$"), 3.5, 5.5, ""),
    (re.compile(r"^(?:cd4 count|cd4\+? count|cd4 t lymphocyte)$"), 500, 1600, ""),
]


def leaf_abnormal(key: str, value: str, adult: bool) -> bool:
    text = _clean(value)
    low = text.lower().rstrip(".")
    if re.fullmatch(r"present", low):
        return bool(_PATHOLOGY_KEYS.search(key))
    if low in ("positive", "detected", "reactive"):
        return True
    if adult and not re.search(r"hpf|%", low):  # "WBC 0-5/hpf" is urine, not blood
        k = norm(key.replace("_", " "))
        for rx, lo, hi, unit in _RANGES:
            if rx.match(k) and (m := re.match(r"\s*[<>]?\s*([\d,]+(?:\.\d+)?)", low)):
                number = float(m.group(1).replace(",", ""))
                if unit and unit not in low.replace(" ", ""):
                    break
                if not lo <= number <= hi:
                    return True
                break
    if re.match(r"^[1-4]\+", low) and not re.search(r"reflex|pulse", key, re.I):
        return True  # "Protein: 1+"
    if (m := re.match(r"^\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?\s*/\s*hpf", low)) and int(
        m.group(2) or m.group(1)
    ) > 5:
        return True  # cells per high-power field in urine
    if low == "absent":
        return not re.search(r"dullness|edema|oedema|mass|rash|lesion|murmur", key, re.I)
    if re.search(r"\b[0-4](?:\+)?/5\b", low) and not re.search(r"\b[0-4]/5\b.*murmur", low):
        return True  # muscle power below 5/5
    # Each part of a finding up to its first negation: "clear, no wheezes, rales or rhonchi" is
    # normal; "mild tenderness, no guarding" is not.
    for segment in re.split(r"[.;]|\b(?:but|however|except|although|whereas)\b", low):
        segment = re.sub(r"\bnon-?\w+|\bunremarkable\b", " ", segment)
        segment = re.split(
            r"\b(?:no|not|without|negative for|absence of|free of|nor|rules? out|ruling out)\b",
            segment,
            maxsplit=1,
        )[0]
        for clause in segment.split(","):
            clause = clause.strip()
            if not clause or re.search(r"\babsent$", clause):
                continue  # "shifting dullness absent"
            if _ABNORMAL_WORDS.search(clause):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Examination
# ---------------------------------------------------------------------------------------------

# Section name (normalised, without "examination") -> system.
_SECTION_SYSTEM = {
    "general": "general",
    "general appearance": "general",
    "appearance": "general",
    "": "general",
    "remainder of the": "general",
    "abdominal": "abdo",
    "abdomen": "abdo",
    "neurological": "neuro",
    "neurologic": "neuro",
    "neuro": "neuro",
    "respiratory": "resp",
    "pulmonary": "resp",
    "lung": "resp",
    "chest": "resp",
    "cardiac": "cvs",
    "cardiovascular": "cvs",
    "cardiopulmonary": "cardiopulm",
    "skin": "skin",
    "dermatologic": "skin",
    "dermatological": "skin",
    "musculoskeletal": "msk",
    "joint": "msk",
    "knee": "msk",
    "shoulder": "msk",
    "hand": "msk",
    "right hand": "msk",
    "lower extremity": "msk",
    "leg": "limb",
    "extremities": "limb",
    "breast": "breast",
    "pelvic": "pelvic",
    "genitourinary": "gu",
    "rectovaginal": "rectal",
    "rectal": "rectal",
    "obstetric": "obs",
    "kidney": "renal",
    "ent": "ent",
    "oral": "ent",
    "head and neck": "ent",
    "eye": "eye",
    "ophthalmic": "eye",
    "ophthalmologic": "eye",
    "ophthalmoscopy": "fundus",
    "neck": "neck",
    "mental status": "psych",
    "psychiatric": "psych",
    "audiological": "hearing",
    "growth parameters": "growth",
    "positional testing": "positional",
}

# Per system: (pattern on a key, code) tried on each key of a finding's path, deepest first; then
# the system default (None: keep a case-local `exam.<slug>` code).
_R = list[tuple[str, str]]
_SYSTEM_RULES: dict[str, tuple[_R, str | None]] = {
    "general": (
        [
            (r"mental status|conscious|orient", "neuro.consciousness"),
            (r"psychiatric|behaviou?r|speech|mood", "psych.mental_state"),
            (r"skin|rash", "skin.inspection"),
            (r"lymph", "general.lymph_nodes"),
            (r"jaundice|icterus|eyes?|heent", "heent.eyes"),
            (r"cardio|heart", "cvs.heart"),
            (r"abdom|hepatomegaly|liver|spleen", "abdo.palpation"),
            (r"renal angle", "exam.flank"),
        ],
        "general.appearance",
    ),
    "abdo": ([(r"auscultation|bowel sounds", "abdo.auscultation")], "abdo.palpation"),
    "neuro": (
        [
            (r"cranial|pupil|eye movement|nystagmus|facial expression", "neuro.cranial_nerves"),
            (r"reflex", "neuro.reflexes"),
            (r"sensat|sensory|vibration|joint position|temperature and pain", "neuro.sensory"),
            (r"gait|coordination|balance|ataxia", "neuro.gait"),
            (r"motor|strength|tone|power|tremor|rigidity|limb|extremit|fascicul", "neuro.motor"),
            (r"mental|conscious|orient|alert|^general$", "neuro.consciousness"),
            (r"speech|facial", "exam.speech"),
            (r"physical|neurological", "exam.neuro"),
        ],
        None,
    ),
    "resp": ([(r"inspection", "resp.inspection"), (r"percussion", "resp.percussion")], "resp.auscultation"),
    "cardiopulm": ([(r"heart|cardiac", "cvs.heart"), (r"lung|pulmonary", "resp.auscultation")], "cvs.heart"),
    "cvs": ([(r"pulses?$", "cvs.pulse")], "cvs.heart"),
    "skin": (
        [(r"lymph", "general.lymph_nodes"), (r"muco", "heent.ent"), (r"joint", "msk.joints")],
        "skin.inspection",
    ),
    "msk": ([(r"spine|back|lumbar", "msk.spine")], "msk.joints"),
    "limb": (
        [
            (r"edema|oedema|swelling", "ext.oedema"),
            (r"pulse", "cvs.peripheral"),
            (r"skin", "skin.inspection"),
        ],
        "ext.oedema",
    ),
    "breast": ([], "breast.exam"),
    "pelvic": ([(r"external genitalia", "gu.external")], "obs.vaginal"),
    "gu": ([], "gu.external"),
    "rectal": ([], "abdo.rectal"),
    "obs": ([(r"fetal heart|auscultation", "obs.fetal_heart")], "obs.uterus"),
    "renal": ([(r"abdom", "abdo.palpation")], "exam.flank"),
    "ent": ([(r"positional", "exam.positional-testing")], "heent.ent"),
    "eye": ([(r"fundoscopy|ophthalmoscopy|fundus|retina", "heent.fundoscopy")], "heent.eyes"),
    "fundus": ([], "heent.fundoscopy"),
    "neck": ([], "exam.neck"),
    "psych": ([], "psych.mental_state"),
    "hearing": ([], "exam.hearing"),
    "growth": ([], "general.nutrition"),
    "positional": ([], "exam.positional-testing"),
}

_LOCAL_EXAMS = {
    "exam.flank": (
        "Flank and renal angles",
        ("flank", "renal angles", "costovertebral angle", "cva tenderness", "kidney examination"),
    ),
    "exam.neck": ("Neck examination", ("neck", "neck examination", "neck lump")),
    "exam.hearing": ("Hearing screening", ("hearing", "hearing test", "audiological examination")),
    "exam.positional-testing": (
        "Positional testing (Dix-Hallpike)",
        (
            "dix-hallpike",
            "dix hallpike",
            "dix-hallpike manoeuvre",
            "dix-hallpike maneuver",
            "positional testing",
        ),
    ),
    "exam.speech": ("Speech", ("speech", "facial expression")),
    "exam.neuro": ("Neurological examination (overall)", ("neurological examination", "neuro exam")),
}
_SECTION_ALIASES = {
    "abdo.palpation": ("abdominal examination", "abdominal exam"),
    "neuro.consciousness": ("neurological examination", "neuro exam", "neurological exam"),
    "resp.auscultation": ("respiratory examination", "chest examination", "lung examination"),
    "cvs.heart": ("cardiovascular examination", "cardiac examination"),
    "skin.inspection": ("skin examination", "dermatological examination"),
    "msk.joints": ("musculoskeletal examination", "joint examination"),
    "obs.vaginal": ("pelvic examination", "pelvic exam", "pelvic", "bimanual examination"),
    "heent.ent": ("ent examination", "oral examination", "mouth examination"),
    "heent.eyes": ("eye examination", "ophthalmic examination", "visual acuity"),
    "psych.mental_state": ("mental status examination", "mental status", "mse"),
    "general.appearance": ("general examination", "look at the patient"),
    "obs.uterus": ("obstetric examination", "abdominal palpation in pregnancy"),
    "gu.external": ("genitourinary examination", "scrotum", "testes", "testicles"),
    "ext.oedema": ("extremities", "leg examination", "lower limbs"),
    "abdo.rectal": ("rectovaginal examination",),
    "general.nutrition": ("growth", "growth parameters", "percentiles"),
}
_GENERIC_LABELS = {"findings", "finding", "observation", "result", "results", ""}


def _section_key(key: str) -> str:
    k = _clean(key.replace("_", " ").replace("-", " ")).lower()
    k = re.sub(r"\b(examination|exam|system|assessment|findings)$", "", k).strip()
    return k


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Flatten nested dicts/lists into (key path, text) leaves; lists become one sentence."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, str(k)))
    elif isinstance(value, list):
        items = [_clean(str(x)) for x in value if not isinstance(x, (dict, list)) and _clean(str(x))]
        if items:
            yield path, "; ".join(i.rstrip(".") for i in items)
        for x in value:
            if isinstance(x, (dict, list)):
                yield from _leaves(x, path)
    elif value is not None and _clean(str(value)):
        yield path, _clean(str(value))


_NOTE_TEXT = re.compile(
    r"\bnot indicated\b|\bnot (?:typically )?necessary\b|\bnot mandatory\b|\boptional\b|"
    r"\bcan be considered\b|"
    r"\bcould be considered\b|\bconsider (?:checking|ordering)\b|\bimagine\b|\bexpected to show\b|"
    r"\bno examination details\b",
    re.I,
)
_PLACEHOLDER_VALUE = re.compile(
    r"^(?:not provided|not specified|not mentioned|not assessed|data not provided|information not provided|"
    r"n/?a|none provided|unknown|not available|not done|details are not provided.*|"
    r"not specified in this.*)\.?$",
    re.I,
)


def _redact(text: str, dx: DxNames) -> str:
    """Drop ", suggestive of BPPV"-style tails that give the diagnosis away in a finding."""
    out = re.sub(
        r",?\s*(?:suggestive of|consistent with|indicative of|indicating|confirming|compatible with)[^.;]*",
        lambda m: "" if dx.named_in(m.group(0)) else m.group(0),
        text,
        flags=re.I,
    )
    return out.strip()


@dataclass
class Draft:
    """One examination finding or test, gathered from one or more source leaves."""

    code: str
    name: str
    labels: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    abnormal: bool = False
    aliases: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # "not indicated" remarks
    section: str = ""
    parts: list[tuple[str, str, str]] = field(default_factory=list)  # tests: (source, sub-label, text)

    def add(self, label: str, text: str, abnormal: bool) -> None:
        text = text.strip()
        if not text:
            return
        line = f"{_cap(label)}: {text}" if label and label.lower() not in _GENERIC_LABELS else _cap(text)
        if line not in self.lines:
            self.lines.append(line)
        self.abnormal = self.abnormal or abnormal

    def text(self) -> str:
        return " ".join(_end(line) for line in self.lines)


def build_examination(pe: dict[str, Any], dx: DxNames, adult: bool, info: CaseImport) -> list[Draft]:
    drafts: dict[str, Draft] = {}
    for section, value in pe.items():
        if section == "Vital_Signs":
            continue
        skey = _section_key(section)
        system = _SECTION_SYSTEM.get(skey)
        if system is None:
            system = _guess_system(skey)
        if system is None:
            system = "local"
        section_text = " ".join(t for _, t in _leaves(value))
        for path, text in _leaves(value):
            if _PLACEHOLDER_VALUE.match(text) or _NOTE_TEXT.search(text):
                info.dropped_placeholder.append(f"{section}{''.join('.' + p for p in path)}: {text!r}")
                continue
            sys_here, sub_path = system, path
            for i, p in enumerate(path):  # "Neurological": {...} inside a general examination
                inner = _SECTION_SYSTEM.get(_section_key(p))
                if inner and inner not in ("general",) and i < len(path) - 1:
                    sys_here, sub_path = inner, path[i + 1 :]
            code = _exam_code(sys_here, section, sub_path, section_text if sys_here == "msk" else text)
            clean = _redact(text, dx)
            if clean != text:
                info.redacted_findings.append(f"{section}: {text!r}")
            label = " - ".join(_human(p) for p in sub_path if _human(p).lower() not in _GENERIC_LABELS)
            if len(drafts.get(code, Draft(code, "")).sources) and section not in drafts[code].sources:
                label = f"{_human(section)}{' - ' + label if label else ''}"
            draft = drafts.setdefault(code, Draft(code, _exam_name(code, section), section=section))
            if section not in draft.sources:
                draft.sources.append(section)
                draft.aliases.append(_human(section).lower())
            for p in sub_path:
                if _human(p).lower() not in _GENERIC_LABELS:
                    draft.aliases.append(_human(p).lower())
            draft.add(label, clean or text, leaf_abnormal(" ".join(path), text, adult))
    out = [d for d in drafts.values() if d.lines]
    for d in out:
        if d.code not in EXAM_CODES:
            info.exams_local.append(f"{d.code} <- {', '.join(d.sources)}")
    return out


def _guess_system(skey: str) -> str | None:
    for word, system in (
        ("neuro", "neuro"),
        ("abdom", "abdo"),
        ("skin", "skin"),
        ("derm", "skin"),
        ("cardi", "cvs"),
        ("resp", "resp"),
        ("lung", "resp"),
        ("eye", "eye"),
        ("ophthal", "eye"),
        ("extrem", "limb"),
        ("hand", "msk"),
        ("knee", "msk"),
        ("joint", "msk"),
        ("mental", "psych"),
        ("pelvi", "pelvic"),
        ("ear", "ent"),
    ):
        if word in skey:
            return system
    return None


def _exam_code(system: str, section: str, path: tuple[str, ...], text: str) -> str:
    if system == "local":
        return f"exam.{slug(_section_key(section)) or 'other'}"
    rules, default = _SYSTEM_RULES[system]
    keys = [_section_key(p) for p in reversed(path)]
    for k in keys:
        for pattern, code in rules:
            if re.search(pattern, k):
                return code
    for k in keys:  # the shared catalogue's own aliases ("lungs", "heart", "lymph nodes"...)
        found = _catalogue_exam(k)
        if found and (
            system in ("general", "cardiopulm", "ent") or found.split(".")[0] == _SYSTEM_PREFIX.get(system)
        ):
            return found
    if system == "msk" and re.search(r"\bspine\b|\blumbar\b", text, re.I):
        return "msk.spine"
    if default:
        return default
    return f"exam.{slug(keys[0] if keys else _section_key(section))}"


_SYSTEM_PREFIX = {
    "neuro": "neuro",
    "abdo": "abdo",
    "resp": "resp",
    "cvs": "cvs",
    "skin": "skin",
    "msk": "msk",
    "eye": "heent",
    "ent": "heent",
    "obs": "obs",
}


def _catalogue_exam(key: str) -> str | None:
    k = norm(key)
    best: tuple[int, str] | None = None
    for code, (name, aliases) in EXAM_CODES.items():
        for phrase in (name, *aliases):
            p = norm(phrase)
            if p and (k == p or f" {p} " in f" {k} ") and (best is None or len(p) > best[0]):
                best = (len(p), code)
    return best[1] if best else None


def _exam_name(code: str, section: str) -> str:
    if code in EXAM_CODES:
        return EXAM_CODES[code][0]
    if code in _LOCAL_EXAMS:
        return _LOCAL_EXAMS[code][0]
    return _human(code.split(".", 1)[1].replace("-", " ")).capitalize()


# ---------------------------------------------------------------------------------------------
# Investigations
# ---------------------------------------------------------------------------------------------

# Extra names for the shared test codes, and a few case-local codes that gather synonyms
# ("Audiometry", "Hearing_Test"). A None code forces a case-local test ("CA-125" is not calcium).
_TEST_EXTRA: dict[str, str | None] = {
    # full blood count and its parts
    "complete blood count": "haem.fbc",
    "cbc": "haem.fbc",
    "hematology": "haem.fbc",
    "haematology": "haem.fbc",
    "hematocrit": "haem.fbc",
    "wbc": "haem.fbc",
    "leukocyte count": "haem.fbc",
    "white blood cell count": "haem.fbc",
    "total wbc count": "haem.fbc",
    "total count wbc": "haem.fbc",
    "platelet": "haem.fbc",
    "platelet count": "haem.fbc",
    "neutrophils": "haem.fbc",
    "lymphocytes": "haem.fbc",
    "monocytes": "haem.fbc",
    "eosinophils": "haem.fbc",
    "basophils": "haem.fbc",
    "bands": "haem.fbc",
    "mcv": "haem.fbc",
    "differential count": "haem.fbc",
    # coagulation
    "prothrombin time": "haem.coag",
    "partial thromboplastin time": "haem.coag",
    "ptt": "haem.coag",
    "bleeding time": "haem.coag",
    "thrombin time": "haem.coag",
    "act": "haem.coag",
    "fibrin split products": "haem.coag",
    "tp activity": "haem.coag",
    "coagulation profile": "haem.coag",
    # chemistry
    "erythrocyte sedimentation rate": "haem.esr",
    "c reactive protein": "chem.crp",
    "na": "chem.electrolytes",
    "k": "chem.electrolytes",
    "cl": "chem.electrolytes",
    "chloride": "chem.electrolytes",
    "bicarbonate": "chem.electrolytes",
    "hco3": "chem.electrolytes",
    "bun": "chem.electrolytes",
    "urea nitrogen": "chem.electrolytes",
    "calcium": "chem.electrolytes",
    "ca": "chem.electrolytes",
    "ca2": "chem.electrolytes",
    "magnesium": "chem.electrolytes",
    "total serum calcium": "chem.electrolytes",
    "serum electrolytes": "chem.electrolytes",
    "cr": "chem.creatinine",
    "renal function tests": "chem.creatinine",
    "glu": "chem.glucose",
    "blood glucose": "chem.glucose",
    "serum glucose": "chem.glucose",
    "direct bilirubin": "chem.lft",
    "bilirubin total": "chem.lft",
    "bilirubin direct": "chem.lft",
    "alkaline phosphatase": "chem.lft",
    "alp": "chem.lft",
    "albumin": "chem.lft",
    "liver enzymes": "chem.lft",
    "liver function tests": "chem.lft",
    "total cholesterol": "chem.lipids",
    "free t4": "chem.thyroid",
    "blood gases": "chem.bgas",
    "blood gas analysis": "chem.bgas",
    "arterial blood gases": "chem.bgas",
    "pao2": "chem.bgas",
    "paco2": "chem.bgas",
    # serology, microbiology
    "autoantibodies": "sero.antibodies",
    "anti nuclear antibody": "sero.antibodies",
    "infectious disease testing": "sero.antibodies",
    "hepatitis b surface antigen": "sero.hbsag",
    "elisa for hiv": "hiv.rdt",
    "hiv": "hiv.rdt",
    "viral load": None,
    "cd4 count": "hiv.cd4",
    "lumbar puncture": "micro.csf",
    "stool examination": "micro.stool",
    "routine stool examination": "micro.stool",
    "urine analysis": "urine.dipstick",
    "urine tests": "urine.dipstick",
    "pregnancy test": "urine.pregnancy",
    "urine toxicology": "x.toxicology",
    # cardiology, neurology, imaging, pathology
    "electromyography": "neuro.emg",
    "nerve conduction studies": "neuro.emg",
    "electroencephalogram": "neuro.eeg",
    "pulmonary function tests": "resp.spirometry",
    "ultrasonography": "img.ultrasound",
    "doppler": "img.ultrasound",
    "radiographs": "img.xray",
    "chest radiograph": "img.cxr",
    "ct angiography": "img.ct",
    "anoscopy": "endo.scope",
    "cystoscopy": "endo.scope",
    "peripheral blood smear": "haem.smear",
    "blood smear": "haem.smear",
    "histopathology": "path.biopsy",
    # case-local codes that merge synonyms, or stop a short alias from matching
    "ca 125": None,
    "audiometry": "x.audiometry",
    "basic audiometry": "x.audiometry",
    "hearing test": "x.audiometry",
    "audiology": "x.audiometry",
    "toxicology": "x.toxicology",
    "toxicology screen": "x.toxicology",
    "sti screen": "x.sti-screen",
    "sti screening": "x.sti-screen",
    "std panel": "x.sti-screen",
    "genetic testing": "x.genetic-testing",
    "bone marrow aspirate": "x.bone-marrow",
    "reticulocyte count": "x.reticulocytes",
    "reticulocytes": "x.reticulocytes",
    "blood group": "x.blood-group",
    "arthrocentesis": "x.joint-aspiration",
    "joint aspiration": "x.joint-aspiration",
    "creatine kinase": None,
    "lactate dehydrogenase": None,
    "c peptide": None,
    "uric acid": None,
    "blood alcohol": None,
}
_LOCAL_TESTS = {
    "x.audiometry": ("Audiometry", ("hearing test", "audiology", "audiogram")),
    "x.toxicology": ("Toxicology screen", ("tox screen", "drug screen", "urine drug screen")),
    "x.sti-screen": ("STI screen", ("std screen", "sexual health screen", "sti tests")),
    "x.genetic-testing": ("Genetic testing", ("genetics", "gene test")),
    "x.bone-marrow": ("Bone marrow aspirate", ("bone marrow", "marrow aspirate", "bone marrow biopsy")),
    "x.reticulocytes": ("Reticulocyte count", ("retics", "reticulocytes")),
    "x.blood-group": ("Blood group", ("blood type", "blood grouping", "rhesus")),
    "x.joint-aspiration": (
        "Joint aspiration (synovial fluid)",
        ("synovial fluid", "joint fluid", "joint tap"),
    ),
}

# Keys that only group other tests ("Blood_Tests", "Imaging"): their children are the tests.
_CONTAINERS = {
    "blood tests",
    "blood test",
    "blood work",
    "laboratory tests",
    "laboratory studies",
    "lab results",
    "lab work",
    "basic laboratory tests",
    "serum laboratory analysis",
    "serum laboratory values",
    "serum studies",
    "serum chemistries",
    "serum chemistry",
    "serum biochemistry",
    "blood chemistry",
    "chemistry panel",
    "metabolic panel",
    "hematologic",
    "additional tests",
    "other tests",
    "special test",
    "special tests",
    "imaging",
    "imaging results",
    "imaging studies",
    "imaging and other tests",
    "assessment tools",
    "screening tests",
}
_SKIP_TESTS = {"vital signs at presentation"}
_GENERIC_CHILD = {
    "findings",
    "finding",
    "result",
    "results",
    "level",
    "appearance",
    "interpretation",
    "comments",
    "others",
    "other",
    "microscopic description",
    "histopathology",
    "preliminary findings",
    "analysis",
    "random",
    "other findings",
    "histopathology findings",
    "scores",
    "optional",
    "suggestion",
}


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _sing(text: str) -> str:
    return " ".join(_singular(w) for w in norm(text).split())


def _test_phrases() -> list[tuple[str, str | None]]:
    phrases: list[tuple[str, str | None]] = []
    for code, (name, aliases) in TEST_CODES.items():
        for p in (name, *aliases):
            phrases.append((_sing(p), code))
    phrases += [(_sing(p), extra) for p, extra in _TEST_EXTRA.items()]
    phrases += [(_sing(name), local) for local, (name, _aliases) in _LOCAL_TESTS.items()]
    return phrases


_TEST_PHRASES = _test_phrases()


def map_test(key: str) -> tuple[bool, str | None]:
    """(matched, code) for a free-text test name: the longest known phrase inside it wins."""
    k = f" {_sing(key.replace('_', ' '))} "
    best: tuple[int, str | None] | None = None
    for phrase, code in _TEST_PHRASES:
        if phrase and f" {phrase} " in k and (best is None or len(phrase) > best[0]):
            best = (len(phrase), code)
    if best is None:
        return False, None
    return True, best[1]


def _test_name(code: str, labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    if code in TEST_CODES:
        return TEST_CODES[code][0]
    if code in _LOCAL_TESTS:
        return _LOCAL_TESTS[code][0]
    return labels[0]


def build_investigations(tr: dict[str, Any], dx: DxNames, adult: bool, info: CaseImport) -> list[Draft]:
    drafts: dict[str, Draft] = {}

    def draft_for(code: str, label: str) -> Draft:
        d = drafts.setdefault(code, Draft(code, ""))
        if label not in d.labels:
            d.labels.append(label)
        return d

    def add_test(key: str, value: Any, code: str | None, prefix: str = "") -> None:
        label = _human(key)
        if code is None:
            code = f"x.{slug(key.replace('_', ' '))}"[:60].rstrip("-.")
        d = draft_for(code, label)
        d.sources.append(f"{prefix}{key}")
        for path, text in _leaves(value):
            sub = " - ".join(_human(p) for p in path if _human(p).lower() not in _GENERIC_CHILD)
            for p in path:
                if _human(p).lower() not in _GENERIC_CHILD and len(p) > 1:
                    d.aliases.append(_human(p).lower())
            if _NOTE_TEXT.search(text):
                d.notes.append(text)
                continue
            if _PLACEHOLDER_VALUE.match(text) or re.match(r"^not specified\b", text, re.I):
                continue
            clean = _redact(text, dx)
            if clean != text:
                info.redacted_results.append(f"{prefix}{key}: {text!r}")
            elif hit := dx.named_in(text):
                info.results_naming_diagnosis.append(f"{prefix}{key} ({hit!r})")
            d.parts.append((label, sub, clean or text))
            d.abnormal = d.abnormal or leaf_abnormal(path[-1] if path else key, text, adult)

    def walk(container: str, children: dict[str, Any], prefix: str) -> None:
        mapped = {k: map_test(k) for k in children}
        fbc_siblings = sum(1 for m in mapped.values() if m[1] == "haem.fbc")
        for key, value in children.items():
            matched, code = mapped[key]
            skey = _sing(key.replace("_", " "))
            if skey in ("other", "suggestion", "comment", "note", "optional"):
                # "Other: No other abnormalities detected", "Suggestion: an MRI could be considered"
                info.dropped_placeholder.append(f"Test_Results.{prefix}{key}: {_flat_text(value)!r}")
                continue
            if code == "haem.hb" and fbc_siblings:
                code = "haem.fbc"  # a haemoglobin next to the white cells is part of the count
            if not matched and isinstance(value, dict) and skey in {_sing(c) for c in _CONTAINERS}:
                walk(key, value, f"{prefix}{key}.")
                continue
            add_test(key, value, code, prefix)

    for key, value in tr.items():
        skey = _sing(key.replace("_", " "))
        if skey in {_sing(s) for s in _SKIP_TESTS}:
            info.sections_skipped.append(f"Test_Results.{key} (repeats the vital signs)")
            continue
        matched, code = map_test(key)
        if not matched and isinstance(value, dict) and skey in {_sing(c) for c in _CONTAINERS}:
            walk(key, value, f"{key}.")
            continue
        if isinstance(value, dict) and not value:
            info.sections_skipped.append(f"Test_Results.{key} (empty)")
            continue
        add_test(key, value, code)

    out = []
    for code, d in drafts.items():
        # One source: "Hemoglobin: 13 g/dL"; several merged under one code: name each source.
        multi = len({src for src, _, _ in d.parts}) > 1
        for src, sub, text in d.parts:
            label = (f"{src} - {sub}" if sub else src) if multi else sub
            d.add(label, text, False)
        d.name = _test_name(code, d.labels)
        source = ", ".join(d.sources)
        if code in TEST_CODES:
            info.tests_mapped.append(f"{code} <- {source}")
        else:
            info.tests_local.append(f"{code} <- {source}")
        if not d.lines:
            if d.notes:
                d.lines.append("Not indicated here: the source case gives no result for this test.")
            else:
                d.lines.append("No result recorded in the source case.")
            info.tests_without_result.append(f"{code} <- {source}")
            d.abnormal = False
        out.append(d)
    return out


def _turnaround(code: str, name: str) -> int:
    text = f"{code} {name}".lower()
    table = [
        (r"glucose", 5),
        (r"dipstick|pregnancy", 10),
        (r"ecg", 10),
        (r"bgas|blood gas", 15),
        (r"spirometry", 30),
        (r"biopsy|histolog|bone-marrow", 4320),
        (r"culture", 2880),
        (r"genetic", 10080),
        (r"img\.mri|\bmri\b", 240),
        (r"img\.ct|\bct\b", 120),
        (r"echo", 120),
        (r"img\.|x-ray|ultrasound|radiograph|mammograph|barium|pyelogram|imaging", 60),
        (r"sero\.|hiv\.|antibod|serolog|screen|elisa|immunofluorescence|electrophoresis|flow", 240),
        (r"haem\.|chem\.|urine\.|smear|iron|reticul", 60),
    ]
    for pattern, minutes in table:
        if re.search(pattern, text):
            return minutes
    return 120


def _cost(code: str, name: str) -> str:
    text = f"{code} {name}".lower()
    return "high" if re.search(r"img\.ct|img\.mri|\bct\b|\bmri\b", text) else "medium"


# ---------------------------------------------------------------------------------------------
# Whole case
# ---------------------------------------------------------------------------------------------

_SPECIALTIES: list[tuple[str, str]] = [
    (
        r"schizo|personality|oppositional|nightmare|behavio|akathisia|psychiatr|dementia|intoxication",
        "psychiatry",
    ),
    (
        r"leukemia|lymphoma|thrombocythemia|hemophilia|thrombasthenia|macroglobulinemia|erythropoietin|anemia",
        "haematology and oncology",
    ),
    (
        r"dermatitis|melanoma|keratosis|pemphigus|molluscum|erythema|bowen|pyoderma|cyst|bite|johnson|leprosy",
        "dermatology",
    ),
    (
        r"myasthenia|seizure|parkinson|huntington|syringomyelia|leukoencephalopathy|encephalopathy|neuralgia|"
        r"system atrophy|intraventricular|neuroleptic",
        "neurology",
    ),
    (r"vertigo|labyrinthitis|bppv", "ENT"),
    (
        r"uterine|endometritis|pelvic inflammatory|meigs|granulosa|genitopelvic|listeriosis|phyllodes|"
        r"aromatase",
        "obstetrics and gynaecology",
    ),
    (
        r"hirschsprung|colitis|hemorrhoid|bowel|cholangitis|hepatic|hepatitis|pancrea|dumping|boerhaave|atresia|"
        r"mesenteric|jaundice",
        "gastroenterology",
    ),
    (
        r"bursitis|dislocation|tendon|osteoclastoma|osteoarthritis|capsulitis|tenosynovitis|herniation|perthes|"
        r"arthritis",
        "orthopaedics and rheumatology",
    ),
    (r"coarctation|septal|aortic|syncope|venous insufficiency", "cardiology"),
    (r"nephritis|nephropathy|kidney|cystitis|torsion", "nephrology and urology"),
    (r"asthma|pneumonia|bronchiectasis|lung|respiratory distress", "respiratory medicine"),
    (r"tuberculosis|rubella|gonococcal|retinitis|infectiosum|roseola|infection", "infectious disease"),
]

_SEX_SPECIFIC = re.compile(
    r"\b(uter\w*|pregnan\w*|gestation|vagina\w*|menarche|menstrua\w*|testic\w*|scrot\w*|penile|penis|breast|"
    r"ovar\w*|cervix|gravida|postpartum|endometri\w*|adnexa\w*|prostat\w*|postmenopausal)\b",
    re.I,
)


def _specialty(dx: str, objective: str, age: int) -> str:
    for pattern, name in _SPECIALTIES:
        if re.search(pattern, dx, re.I):
            return name if age >= CHILD_AGE or name in ("psychiatry",) else f"paediatrics ({name})"
    return "paediatrics" if age < CHILD_AGE else "general medicine"


def _pick(names: list[str], seed: int) -> str:
    return names[(seed * 7 + 3) % len(names)]


def _sex_noun(demo: Demographics) -> str:
    female = demo.sex == "female"
    if demo.label == "newborn" or demo.label.endswith(("day-old", "week-old")):
        return "newborn girl" if female else "newborn boy"
    if demo.age_years < 2:
        return "baby girl" if female else "baby boy"
    if demo.age_years < 18:
        return "girl" if female else "boy"
    return "woman" if female else "man"


def _opening(primary: str, v: Voice, dx: DxNames) -> str:
    t = _clean(primary).rstrip(".")
    t = re.sub(r"^(?:the )?presence of ", "", t, flags=re.I)
    t = re.sub(r"^episode of ", "an episode of ", t, flags=re.I)
    who = f"I've brought {v.noun} in" if v.child else "I've come in"
    if m := re.match(rf"^{_PARENT_WORDS}\s+reports?\s+(.*)$", t, re.I):
        who_worries = "mother" if "mother" in t.lower() else "parent"
        text = f"Hello, doctor. My {who_worries} is worried about {m.group(1)}."
    elif re.search(r"murmur|pressure|reflex", t, re.I):
        asked = f"I was asked to bring {v.noun} in" if v.child else "I was asked to come in"
        text = f"Hello, doctor. {asked} because of {_lc(t)}."
    else:
        text = f"Hello, doctor. {who} because of {_lc(t)}."
    if dx.named_in(text):
        text = (
            f"Hello, doctor. {who} to get checked." if not v.child else f"Hello, doctor. {who} to be checked."
        )
    return text


def _convert(
    record: dict[str, Any], number: int, line: int, jsonl: Path
) -> tuple[dict[str, Any], CaseImport]:
    osce = record["OSCE_Examination"]
    actor: dict[str, Any] = osce["Patient_Actor"]
    correct = _clean(osce["Correct_Diagnosis"])
    dx = diagnosis_names(correct)
    case_id = f"{CASE_PREFIX}-{number:03d}-{slug(dx.name)}"[:80].rstrip("-")
    info = CaseImport(record=number, line=line, case_id=case_id, diagnosis=correct)
    where = f"{jsonl}:{line}"

    symptoms = actor.get("Symptoms") or {}
    primary = _clean(symptoms.get("Primary_Symptom", ""))
    secondary = symptoms.get("Secondary_Symptoms") or []
    if isinstance(secondary, str):
        secondary = [secondary]
    history_text = " ".join(
        _flat_text(actor.get(k)) for k in ("History", "Past_Medical_History", "Social_History")
    )
    demo = parse_demographics(actor["Demographics"], history_text + " " + primary)
    if not demo.sex:
        demo = Demographics(
            demo.age_years, demo.age_months, "female" if number % 2 else "male", demo.label, False
        )
        info.guesses.append(f"sex not stated in the source; set to {demo.sex}")
    elif not demo.sex_stated:
        info.guesses.append(f"sex read from the history's pronouns: {demo.sex}")
    v = make_voice(demo, history_text)

    # --- facts
    fb = FactBuilder(dx, v, info)
    fb.symptom(primary, primary=True)
    known = set()
    for key, value in actor.items():
        if key in ("Demographics", "Symptoms"):
            continue
        cat = _SECTION_CATEGORY.get(key)
        if cat is None:
            cat = _guess_section_category(key)
            if cat is None:
                info.sections_skipped.append(f"Patient_Actor.{key}")
                continue
        known.add(key)
        if isinstance(value, list) and cat == "medication":
            fb.medications([str(x) for x in value], key)
            continue
        for label, text in _section_texts(value):
            for sentence in split_sentences(text):
                source = f"{key}{'.' + label if label else ''}"
                fb.sentence(sentence, cat, source)
    for s in secondary:
        if isinstance(s, str):
            fb.symptom(s, primary=False)
    facts = _finish_facts(fb.facts)
    info.facts = len(facts)

    # --- examination, vitals, tests
    pe = osce.get("Physical_Examination_Findings") or {}
    vitals = parse_vitals(pe.get("Vital_Signs"), info)
    if "Vital_Signs" not in pe:
        info.sections_skipped.append("Physical_Examination_Findings.Vital_Signs (absent)")
    adult = demo.age_years >= CHILD_AGE
    exams = build_examination(pe, dx, adult, info)
    tests = build_investigations(osce.get("Test_Results") or {}, dx, adult, info)

    examination = _coded_items(exams, _exam_aliases, kind="exam")
    investigations = _coded_items(tests, _test_aliases, kind="test")

    objective = _clean(osce.get("Objective_for_Doctor", "")) or "Assess and diagnose the patient."
    if dx.named_in(objective):
        info.guesses.append("objective named the diagnosis; replaced with a generic one")
        objective = "Assess the patient and make the diagnosis."

    patient = _patient(demo, v, number, actor, primary, dx, info)
    rubric = _rubric(facts, exams, tests, vitals, dx)
    stewardship = [
        {
            "test": t.code,
            "penalty": 0.5,
            "reason": "The source case marks this test as not needed for the diagnosis.",
        }
        for t in tests
        if t.notes and t.lines and t.lines[0].startswith("Not indicated")
    ]
    if stewardship:
        rubric["stewardship"] = stewardship

    who = _sex_noun(demo) if demo.label == "newborn" else f"{demo.label} {_sex_noun(demo)}"
    title = f"{_cap(who)} with {_lc(_short(primary, 70))}"
    if m := re.match(rf"^({_PARENT_WORDS})\s+reports?\s+(.*)$", primary, re.I):
        title = f"{_cap(who)} whose {m.group(1).lower()} is worried about {_short(m.group(2), 60)}"
    if dx.named_in(title):
        title = f"{_cap(who)} (AgentClinic case {number})"
    key_tests = [t.name for t in tests if t.abnormal][:3]
    teaching = [
        f"The diagnosis is {dx.name}{' (' + ', '.join(dx.synonyms[:2]) + ')' if dx.synonyms else ''}."
    ]
    if key_tests:
        teaching.append(f"Investigations that support it here: {', '.join(key_tests)}.")
    teaching.append(f"Case objective: {objective}")
    teaching.append(
        "Imported from AgentClinic (MedQA, USMLE style): the setting is a well-equipped hospital, "
        "not a low-resource one, and the source has no management plan."
    )
    fixed = []
    reasons = []
    all_text = json.dumps(osce, ensure_ascii=False)
    if _SEX_SPECIFIC.search(all_text):
        fixed.append("sex")
        reasons.append("sex-specific anatomy or pregnancy")
    if demo.age_years < 18:
        fixed.append("age")
        reasons.append("a child or adolescent")

    from ..patient.topics import tag_fact

    adult = demo.age_years >= 16
    for fact in facts:
        topics = tag_fact(
            fact["category"], fact["answer"], fact["keywords"], fact.get("questions", []), adult
        )
        if topics:
            fact["topics"] = topics
    case: dict[str, Any] = {
        "format": 1,
        "id": case_id,
        "title": title,
        "version": 1,
        "language": "en",
        "specialty": _specialty(dx.name, objective, demo.age_years),
        "difficulty": "intermediate",
        "setting": (
            "Hospital (USMLE-style OSCE station): laboratory, imaging and specialist tests are available, "
            "as in a well-equipped teaching hospital. Not adapted to low-resource settings."
        ),
        "learning_objectives": [
            objective,
            "Take a focused history, examine the relevant systems and choose investigations before naming "
            "the diagnosis.",
        ],
        "tags": ["agentclinic", "medqa", "usmle", "imported", "hospital"],
        "sources": [
            {
                "title": "AgentClinic: a multimodal agent benchmark to evaluate AI in simulated clinical "
                "environments (agentclinic_medqa.jsonl)",
                "publisher": "Schmidgall et al., AgentClinic project (MIT licence)",
                "year": 2024,
                "url": "https://github.com/SamuelSchmidgall/AgentClinic",
                "section": f"record {number} (line {line})",
            },
            {
                "title": "What disease does this patient have? A large-scale open domain question answering "
                "dataset from medical exams (MedQA)",
                "publisher": "Jin et al., Applied Sciences",
                "year": 2021,
            },
        ],
        "author": "Imported from AgentClinic (MIT)",
        "patient": patient,
        "facts": facts,
        "vitals": vitals,
        "examination": examination,
        "investigations": investigations,
        "diagnosis": {"primary": {"name": dx.name, "synonyms": list(dx.synonyms)}},
        "management": [],
        "management_note": (
            "The source case has no management plan, so this case is scored on history, examination, "
            "investigations and diagnosis only."
        ),
        "rubric": rubric,
        "teaching_points": teaching,
        "fairness": {"fixed": fixed, "reason": "; ".join(reasons)} if fixed else {"fixed": []},
    }
    try:
        Case.model_validate(case)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise CaseFormatError(f"{where}: cannot convert this record ({loc}: {first['msg']})") from err
    return case, info


def _flat_text(value: Any) -> str:
    return " ".join(text for _, text in _section_texts(value))


def _section_texts(value: Any) -> list[tuple[str, str]]:
    """A section's prose: a string, a list of strings, or a dict of them ("Substance_Use": ...)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [("", value)]
    if isinstance(value, list):
        return [
            ("", _end(_clean(str(x)))) for x in value if not isinstance(x, (dict, list)) and _clean(str(x))
        ]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += [(k if not label else f"{k}.{label}", text) for label, text in _section_texts(v)]
        return out
    return [("", str(value))]


def _guess_section_category(key: str) -> str | None:
    k = key.lower()
    for word, cat in (
        ("medic", "medication"),
        ("drug", "medication"),
        ("family", "family"),
        ("allerg", "allergies"),
        ("social", "social"),
        ("review", "systems_review"),
        ("history", "past_history"),
        ("immun", "immunisation"),
        ("vaccin", "immunisation"),
        ("obstet", "obstetric"),
        ("gyn", "obstetric"),
        ("develop", "developmental"),
        ("diet", "nutrition"),
        ("nutrition", "nutrition"),
    ):
        if word in k:
            return cat
    return None


def _short(text: str, limit: int) -> str:
    t = _clean(text).rstrip(".")
    if len(t) <= limit:
        return t
    cut = t[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut


def _finish_facts(drafts: list[DraftFact]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    ids: set[str] = set()
    for d in drafts:
        base_words = d.keywords[0] if d.keywords else d.category
        base = f"{_CATEGORY_PREFIX[d.category]}-{slug(base_words)}"[:50].rstrip("-")
        fid, n = base, 2
        while fid in ids:
            fid, n = f"{base}-{n}", n + 1
        ids.add(fid)
        fact: dict[str, Any] = {
            "id": fid,
            "category": d.category,
            "answer": d.answer,
            "keywords": d.keywords,
            "disclosure": "volunteered" if d.volunteered else "on_question",
        }
        if d.critical:
            fact["critical"] = True
        if d.negative:
            fact["negative"] = True
        fact["_source"] = d.source  # removed below; used for rubric descriptions
        out.append(fact)
    return out


# Sub-headings too vague to name one finding ("examine inspection").
_VAGUE_ALIASES = {
    "inspection",
    "palpation",
    "percussion",
    "auscultation",
    "inspection and palpation",
    "findings",
    "finding",
    "general",
    "observation",
    "other findings",
    "screening",
    "special tests",
    "special test",
    "culture",
    "appearance",
    "color",
    "colour",
    "blood",
    "protein",
    "glucose",
    "result",
    "level",
    "others",
    "other",
    "analysis",
}


def _exam_aliases(d: Draft) -> tuple[list[str], list[str]]:
    extra = list(EXAM_CODES.get(d.code, ("", ()))[1]) + list(_LOCAL_EXAMS.get(d.code, ("", ()))[1])
    return [*_SECTION_ALIASES.get(d.code, ()), *extra], d.aliases


def _test_aliases(d: Draft) -> tuple[list[str], list[str]]:
    std = TEST_CODES.get(d.code) or _LOCAL_TESTS.get(d.code)
    extra = [std[0], *std[1]] if std else []
    return [*(label.lower() for label in d.labels), *extra], d.aliases


def _coded_items(
    drafts: list[Draft], aliases_of: Callable[[Draft], tuple[list[str], list[str]]], kind: str
) -> list[dict[str, Any]]:
    """Findings or tests with aliases that name one code only (lint refuses shared aliases).

    Names are claimed first, then the catalogue's aliases, then sub-headings of the source: so a
    urinalysis's "Glucose" line never takes "glucose" from the blood glucose test.
    """
    owner: dict[str, str] = {}
    for d in drafts:
        owner.setdefault(norm(d.name), d.code)
    chosen: dict[str, list[str]] = {d.code: [] for d in drafts}
    for rank in (0, 1):
        for d in drafts:
            aliases = chosen[d.code]
            for a in aliases_of(d)[rank]:
                a = _clean(a)
                key = norm(a)
                if not key or len(a) > 200 or key == norm(d.name) or a.lower() in _VAGUE_ALIASES:
                    continue
                if rank and len(key) < 3:
                    continue  # "k", "ap": too short to be a request on their own
                if owner.setdefault(key, d.code) != d.code or key in (norm(x) for x in aliases):
                    continue
                if len(aliases) < 12:
                    aliases.append(a.lower() if not re.search(r"[A-Z]{2}", a) else a)
    out = []
    for d in drafts:
        item: dict[str, Any] = {"code": d.code, "name": d.name, "aliases": chosen[d.code]}
        if kind == "exam":
            item["finding"] = d.text()
            item["abnormal"] = d.abnormal
        else:
            item["result"] = d.text()
            item["abnormal"] = d.abnormal
            item["available"] = True
            item["cost"] = _cost(d.code, d.name)
            item["turnaround_minutes"] = _turnaround(d.code, d.name)
        out.append(item)
    return out


def _patient(
    demo: Demographics,
    v: Voice,
    number: int,
    actor: dict[str, Any],
    primary: str,
    dx: DxNames,
    info: CaseImport,
) -> dict[str, Any]:
    first = _pick(_FEMALE_NAMES if demo.sex == "female" else _MALE_NAMES, number)
    surname = _pick(_SURNAMES, number * 3 + 1)
    social = _flat_text(actor.get("Social_History"))
    occupation = _occupation(social, actor["Demographics"], demo)
    patient: dict[str, Any] = {"name": f"{first} {surname}", "age_years": demo.age_years}
    if demo.age_months is not None and (demo.age_years < 5):
        patient["age_months"] = demo.age_months
    patient["sex"] = demo.sex
    patient["occupation"] = occupation
    if v.child:
        parent_first = _pick(_FEMALE_NAMES if v.parent == "mother" else _MALE_NAMES, number + 11)
        if parent_first == first:
            parent_first = _pick(_FEMALE_NAMES if v.parent == "mother" else _MALE_NAMES, number + 12)
        patient["informant"] = {"name": f"{parent_first} {surname}", "relation": v.parent}
        info.guesses.append(f"the {v.parent} answers for the child (informant)")
    patient["opening_statement"] = _opening(primary, v, dx)
    patient["unknown_answer"] = (
        f"I'm not sure. I haven't noticed anything like that in {v.him}."
        if v.child
        else "I'm not sure. I haven't noticed anything like that."
    )
    if v.child:
        persona = {
            "personality": f"a caring {v.parent}, cooperative and observant",
            "speech_style": "clear, plain sentences; answers what is asked and does not guess",
            "literacy": "high",
            "emotional_state": f"worried about {v.his} child but calm",
            "ideas": "is not sure what is causing this",
            "concerns": f"wants to know what is wrong with {v.his} child and whether it is serious",
            "expectations": "expects the child to be examined and tested, and to be told what is going on",
        }
    else:
        persona = {
            "personality": "cooperative and matter-of-fact",
            "speech_style": "clear, plain sentences; answers what is asked and does not guess",
            "literacy": "high",
            "emotional_state": "concerned but calm",
            "ideas": "has no firm idea what is causing this",
            "concerns": "wants to know what is wrong and whether it is serious",
            "expectations": "expects to be examined and tested, and to be told what is going on",
        }
    patient["persona"] = persona
    return patient


_JOBS = (
    r"teacher|engineer|accountant|farmer|cashier|clerk|designer|nurse|nursing assistant|warden|bodybuilder|"
    r"driver|mechanic|lawyer|doctor|chef|cook|waiter|waitress|salesman|manager|secretary|builder|electrician"
)


def _occupation(social: str, demographics: str, demo: Demographics) -> str:
    if demo.age_years == 0:
        return "infant"
    if demo.age_years < 5:
        return "young child (not at school)"
    s = _clean(social)
    for rx in (
        r"\bworks as (?:an? )?([^.,;]+)",
        r"\b(?:works (?:at|in) (?:an? |the )?)([^.,;]+)",
        r"([A-Za-z ]+?) by profession",
        r"\b((?:retired )?(?:elementary |high |primary )?school teacher)\b",
        r"\b(retired (?:\w+ )?(?:" + _JOBS + r"))\b",
        rf"\b((?:\w+ )?(?:{_JOBS}))\b",
        r"\b((?:college|high school|university) student)\b",
        r"\b(student)\b",
    ):
        if m := re.search(rx, s, re.I):
            job = m.group(1).strip().lower()
            if rx.startswith(r"\b(?:works (?:at|in)"):
                job = f"works at {job}"
            return job
    if m := re.search(rf"\b((?:college |high school )?student|{_JOBS})\b", demographics, re.I):
        return m.group(1).lower()
    if demo.age_years < 18:
        if demo.age_years >= CHILD_AGE:
            return "student"
        return "school pupil" if re.search(r"school|grade|class", s, re.I) else "child"
    return "not stated"


def _rubric(
    facts: list[dict[str, Any]], exams: list[Draft], tests: list[Draft], vitals: dict[str, Any], dx: DxNames
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for f in facts:
        source = f.pop("_source")
        # The presenting complaint and what the history of it says; the many pertinent negatives
        # are left out so that a denial list does not outweigh the story.
        if (
            f["category"] == "presenting_complaint"
            or f.get("critical")
            or (f["category"] == "hpi" and not f.get("negative"))
        ):
            weight = 2 if f["category"] == "presenting_complaint" else 1
            items.append(
                {
                    "id": f"h-{f['id']}"[:80],
                    "description": f"History: {_short(source, 150)}{'...' if len(source) > 150 else ''}",
                    "domain": "history",
                    "weight": weight,
                    "fact": f["id"],
                }
            )
    if any(k != "note" for k in vitals):
        items.append(
            {
                "id": "e-vitals",
                "description": "Took the vital signs",
                "domain": "examination",
                "weight": 1,
                "exam": "vitals",
            }
        )
    # One item per abnormal finding; a section with nothing abnormal counts once, lightly.
    by_section: dict[str, list[Draft]] = {}
    for d in exams:
        by_section.setdefault(d.section, []).append(d)
    seen: set[str] = set()
    for section, drafts in by_section.items():
        abnormal = [d for d in drafts if d.abnormal]
        chosen = abnormal or drafts[:1]
        for d in chosen:
            if d.code in seen:
                continue
            seen.add(d.code)
            items.append(
                {
                    "id": f"e-{d.code.replace('.', '-')}"[:80],
                    "description": f"Examined: {d.name.lower()} ({_human(section).lower()})"
                    + (" - abnormal" if d.abnormal else ""),
                    "domain": "examination",
                    "weight": 1 if d.abnormal else 0.5,
                    "exam": d.code,
                }
            )
    for t in tests:
        if t.lines and t.lines[0].startswith(("No result recorded", "Not indicated")):
            continue
        items.append(
            {
                "id": f"t-{t.code.replace('.', '-')}"[:80],
                "description": f"Ordered: {t.name}" + (" (abnormal result)" if t.abnormal else ""),
                "domain": "investigations",
                "weight": 1 if t.abnormal else 0.5,
                "test": t.code,
            }
        )
    items.append(
        {
            "id": "d-primary",
            "description": f"Diagnosed {dx.name}",
            "domain": "diagnosis",
            "weight": 3,
            "diagnosis": "primary",
        }
    )
    return {"pass_mark": 0.6, "items": items, "critical_errors": []}
