"""Model qualification: a model file speaks for the patient only once it has been measured here.

`edgetutor models qualify [MODEL]` plays the fixed fidelity suite (fidelity_suite.yaml: the demo
cases' evaluation questions, adversarial probes and conversation utterances) through the real
encounter, guard included, then a short speed run, and writes a signed record for the model file:

- the file's SHA-256, size and name, the date, this machine, the EdgeTutor version, the suite's
  digest;
- drafts (model replies generated), accepted (shown to the trainee), rejected by reason (the
  first reason's category), accepted after dropping a failing tail;
- violations: accepted replies that the independent checker (fidelity_check.py, which shares no
  code with the guard) finds saying something the case does not; and how many drafts it flagged
  in all, to show what the guard caught;
- variety: the share of accepted replies that differ from the authored text at all, and the
  share that are not near-copies (difflib similarity below NEAR_COPY);
- speed: tokens per second and time to the first token (first turn, and the median turn);
- whether it qualifies, and why not.

Records live in `home()/qualification/<sha256>.json`, signed with this device's key (the key that
signs results, sync/device.py): a record edited by hand, or made on another device (whose speed
says nothing about this one), does not count. A model qualifies when THRESHOLDS all hold (see
README, "Models"); `status(path)` says whether and why not, and the patient speaks through a
model only if it qualifies (session.load_model), unless EDGETUTOR_UNQUALIFIED=1 (development).
"""

from __future__ import annotations

import base64
import datetime as dt
import difflib
import hashlib
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .. import __version__, paths
from ..bench.machine import describe
from ..bench.speed import QUESTIONS, load_standard_case
from ..cases.loader import load_case
from ..cases.schema import Case
from ..errors import EdgeTutorError, ModelError
from ..fsutil import atomic_write_bytes
from ..language.lexicon import normalise
from ..packs.install import PackStore
from ..packs.signing import key_id, parse_public_key, sign, verify
from ..patient.embed import Embedder, load_encoder
from ..patient.encounter import Encounter
from ..patient.fidelity_check import case_violations
from ..patient.llm import Backend, LlamaBackend
from ..patient.prompt import messages
from ..patient.retrieval import FactIndex
from ..sync.device import key_path, load_or_create

# A model qualifies when all of these hold (README, section "Models").
THRESHOLDS: dict[str, float] = {
    "max_violations": 0,  # accepted replies the independent checker flags
    "min_acceptance": 0.30,  # accepted / drafts
    "min_drafts": 50,  # a suite too small to say anything does not qualify
    "max_first_token_s": 1.5,  # median time to the first token of a later turn
    "min_tokens_per_s": 8.0,  # median generation speed
}
# difflib ratio at or above which an accepted reply counts as a near-copy of the authored text.
NEAR_COPY = 0.9
UNQUALIFIED_ENV = "EDGETUTOR_UNQUALIFIED"
SUITE_FILE = "fidelity_suite.yaml"


def records_dir() -> Path:
    return paths.home() / "qualification"


# -- the suite -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    case: str
    split: str  # "tuning" or "held-out"
    set: str  # "questions", "probes" or "conversation"
    q: str


@cache
def load_suite() -> tuple[str, tuple[Item, ...]]:
    """(digest, items) of the packaged fidelity suite."""
    text = resources.files(__package__).joinpath(SUITE_FILE).read_text(encoding="utf-8")
    doc = YAML(typ="safe").load(text)
    return doc["digest"], tuple(Item(**i) for i in doc["items"])


def demo_cases(ids: Iterable[str]) -> dict[str, Case]:
    """The suite's cases: installed ones first, else the checkout's casepacks/demo source.

    Raises EdgeTutorError naming the cases found nowhere.
    """
    wanted = sorted(set(ids))
    found: dict[str, Case] = {}
    try:
        installed = {c.id: c for c in PackStore().cases()}
    except EdgeTutorError:
        installed = {}
    source = Path(__file__).resolve().parents[2] / "casepacks" / "demo" / "cases"
    for case_id in wanted:
        if case_id in installed:
            found[case_id] = load_case(installed[case_id].file)
        elif (source / f"{case_id}.yaml").is_file():
            found[case_id] = load_case(source / f"{case_id}.yaml")
    missing = [c for c in wanted if c not in found]
    if missing:
        raise EdgeTutorError(
            f"the fidelity suite needs the demo cases ({', '.join(missing[:3])}...): "
            "install them with: edgetutor pack install casepacks/edgetutor-demo.etpack"
        )
    return found


# -- fidelity ---------------------------------------------------------------------------------
def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, normalise(a), normalise(b)).ratio()


def evaluate(
    backend: Backend,
    encoder: Embedder | None,
    items: Iterable[Item],
    cases: dict[str, Case],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Play `items` through one encounter per case; the counts by split and in total.

    Every reply the guard let through is read again by the independent checker.
    """
    items = list(items)
    turns: list[dict[str, Any]] = []
    encounters: dict[str, Encounter] = {}
    for n, item in enumerate(items):
        enc = encounters.get(item.case)
        if enc is None:
            enc = encounters[item.case] = Encounter(cases[item.case], backend, encoder)
        reply = enc.act(item.q)
        guard = reply.guard or {}
        turn: dict[str, Any] = {"case": item.case, "split": item.split, "set": item.set, "q": item.q}
        turn |= {"source": reply.source, "matched": reply.matched, "reply": reply.text}
        draft = guard.get("draft")
        if reply.kind == "question" and reply.matched and "draft" in guard:
            authored = " ".join(f.answer for f in cases[item.case].facts if f.id in reply.matched)
            turn |= {
                "draft": draft,
                "authored": authored,
                "reasons": guard.get("reasons", []),
                "cut": guard.get("cut"),
                "guard_ms": reply.timings.get("guard_ms"),
                "checker_on_draft": case_violations(cases[item.case], draft, reply.matched) if draft else [],
            }
            if reply.source == "model":
                turn["violations"] = case_violations(cases[item.case], reply.text, reply.matched)
                turn["similarity"] = round(_similarity(reply.text, authored), 3)
        turns.append(turn)
        if progress:
            progress(n + 1, len(items))
    splits = sorted({t["split"] for t in turns})
    report: dict[str, Any] = {"total": summarise(turns)}
    for split in splits:
        report[split] = summarise([t for t in turns if t["split"] == split])
    report["turns"] = turns
    return report


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts a report states for a set of played turns."""
    drafts = [t for t in turns if "draft" in t]
    accepted = [t for t in drafts if t["source"] == "model"]
    rejected = [t for t in drafts if t["source"] != "model"]
    by_reason = Counter((t["reasons"] or ["unknown"])[0].split(":", 1)[0] for t in rejected)
    cut_reasons = Counter(t["cut"]["reason"].split(":", 1)[0] for t in accepted if t.get("cut"))
    differ = [t for t in accepted if _norm(t["reply"]) != _norm(t["authored"])]
    novel = [t for t in accepted if t["similarity"] < NEAR_COPY]
    violating = [t for t in accepted if t["violations"]]
    flagged = [t for t in drafts if t.get("checker_on_draft")]
    guard_ms = sorted(t["guard_ms"] for t in drafts if t.get("guard_ms") is not None)
    return {
        "questions": len(turns),
        "drafts": len(drafts),
        "accepted": len(accepted),
        "acceptance": round(len(accepted) / len(drafts), 3) if drafts else 0.0,
        "accepted_after_cut": len([t for t in accepted if t.get("cut")]),
        "cut_by_reason": dict(cut_reasons.most_common()),
        "rejected": len(rejected),
        "rejected_by_reason": dict(by_reason.most_common()),
        "differ_from_authored": len(differ),
        "variety": round(len(differ) / len(accepted), 3) if accepted else 0.0,
        "not_near_copies": len(novel),
        "novelty": round(len(novel) / len(accepted), 3) if accepted else 0.0,
        "median_similarity": round(statistics.median(t["similarity"] for t in accepted), 3)
        if accepted
        else None,
        "violations": len(violating),
        "violation_examples": [
            {"case": t["case"], "q": t["q"], "reply": t["reply"], "why": t["violations"]}
            for t in violating[:10]
        ],
        "drafts_flagged_by_checker": len(flagged),
        "flagged_drafts_rejected": len([t for t in flagged if t["source"] != "model"]),
        "guard_ms_median": round(statistics.median(guard_ms), 2) if guard_ms else None,
        "guard_ms_p95": round(guard_ms[int(0.95 * (len(guard_ms) - 1))], 2) if guard_ms else None,
    }


def _norm(text: str) -> str:
    return normalise(text)


# -- speed ------------------------------------------------------------------------------------
def speed_run(backend: Backend, encoder: Embedder | None, max_tokens: int = 48) -> dict[str, Any]:
    """Time to the first token and tokens/s on the standard encounter (bench/standard_case.yaml),
    asking the model directly (the guard would stop some replies early and skew tokens/s)."""
    case = load_standard_case()
    index = FactIndex(case, encoder)
    reset = getattr(backend, "reset", None)
    if callable(reset):
        reset()  # the first turn evaluates the whole prompt, as at the start of an encounter
    ttft: list[float] = []
    rates: list[float] = []
    for question in QUESTIONS:
        facts = [m.fact for m in index.search(question).matches]
        if not facts:
            continue
        for _ in backend.stream(messages(case, question, facts), max_tokens=max_tokens, temperature=0.0):
            pass
        ttft.append(backend.last.ttft_s)
        if backend.last.tokens_per_s:
            rates.append(backend.last.tokens_per_s)
    if not ttft:
        raise ModelError("speed run: no question of the standard case reached the model")
    return {
        "turns": len(ttft),
        "first_turn_first_token_s": round(ttft[0], 3),
        "first_token_s": round(statistics.median(ttft[1:] or ttft), 3),
        "tokens_per_s": round(statistics.median(rates), 1) if rates else 0.0,
    }


# -- records ----------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """The file's SHA-256, remembered by (path, size, mtime) so a GB model is read once."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = records_dir() / "hashes.json"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return str(known[key])
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        known = known if isinstance(known, dict) else {}
        known[key] = digest
        atomic_write_bytes(memo, json.dumps(known, indent=1).encode())
    except OSError:
        pass  # a read-only data folder: hash again next time
    return digest


def verdict(record: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether a record's measurements meet THRESHOLDS, and every reason they do not."""
    t = THRESHOLDS
    f, s = record.get("fidelity", {}), record.get("speed", {})
    why: list[str] = []
    if not record.get("complete_suite"):
        why.append("measured on part of the suite only")
    if f.get("violations", 1) > t["max_violations"]:
        why.append(f"{f.get('violations')} violating replies (allowed {t['max_violations']:g})")
    if f.get("drafts", 0) < t["min_drafts"]:
        why.append(f"{f.get('drafts', 0)} drafts (needs {t['min_drafts']:g})")
    if f.get("acceptance", 0.0) < t["min_acceptance"]:
        why.append(f"acceptance {f.get('acceptance', 0.0):.0%} (needs {t['min_acceptance']:.0%})")
    if s.get("first_token_s", 1e9) > t["max_first_token_s"]:
        why.append(f"first token {s.get('first_token_s')} s (max {t['max_first_token_s']:g} s)")
    if s.get("tokens_per_s", 0.0) < t["min_tokens_per_s"]:
        why.append(f"{s.get('tokens_per_s')} tokens/s (needs {t['min_tokens_per_s']:g})")
    return not why, why


def _payload(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def write_record(record: dict[str, Any]) -> Path:
    """Sign `record` with this device's key and store it under its model's hash."""
    key = load_or_create()
    record = dict(record)
    record["signed_by"] = key.device_id
    record["public_key"] = key.public_pem
    record["signature"] = base64.b64encode(sign(key.private, _payload(record))).decode()
    path = records_dir() / f"{record['model']['sha256']}.json"
    atomic_write_bytes(path, json.dumps(record, indent=1, ensure_ascii=False).encode())
    return path


def _this_device() -> str | None:
    path = key_path()
    if not path.exists():
        return None

    return load_or_create().device_id


def read_record(sha256: str) -> dict[str, Any] | None:
    """The stored record for a model hash if it is intact and signed here; None if there is none.

    Raises ModelError (one line) for a record that is unreadable, altered or from another device.
    """
    path = records_dir() / f"{sha256}.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        public = parse_public_key(record["public_key"], str(path))
        signature = base64.b64decode(record["signature"])
    except (OSError, ValueError, KeyError, TypeError, EdgeTutorError) as err:
        raise ModelError(f"qualification record {path.name} is unreadable ({err})") from None
    if not verify(public, signature, _payload(record)) or key_id(public) != record.get("signed_by"):
        raise ModelError(f"qualification record {path.name} was altered: qualify the model again")
    try:
        here = _this_device()
    except EdgeTutorError:
        here = None
    if record.get("signed_by") != here:
        raise ModelError(f"qualification record {path.name} was made on another device: qualify it here")
    if record.get("model", {}).get("sha256") != sha256:
        raise ModelError(f"qualification record {path.name} is for another file")
    return record


@dataclass
class Status:
    qualifies: bool
    reason: str  # one line: why not, or what it achieved
    record: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """For the `edgetutor models` table."""
        return "yes" if self.qualifies else f"no: {self.reason}"


def status(path: Path) -> Status:
    """Whether the model file at `path` qualifies on this device. Never raises."""
    try:
        record = read_record(file_sha256(path))
    except (OSError, EdgeTutorError) as err:
        return Status(False, str(err) if isinstance(err, EdgeTutorError) else f"cannot read it: {err}")
    if record is None:
        return Status(False, "not qualified yet")
    ok, why = verdict(record)
    f = record["fidelity"]
    if ok:
        return Status(
            True,
            f"qualified {record['date'][:10]}: {f['accepted']}/{f['drafts']} accepted, 0 violations",
            record,
        )
    return Status(False, "; ".join(why), record)


def allow_unqualified() -> bool:
    return os.environ.get(UNQUALIFIED_ENV, "").strip() in ("1", "yes", "true")


# -- the whole run --------------------------------------------------------------------------------
def qualify(
    model_path: Path,
    *,
    cases_only: list[str] | None = None,
    per_case: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    n_threads: int | None = None,
) -> tuple[dict[str, Any], Path]:
    """Run the suite and the speed run on `model_path`; write and return its signed record.

    `cases_only`/`per_case` run part of the suite (a record that never qualifies: for tests).
    Raises ModelError (one line) if the model cannot be loaded: a record is written only for a
    model that ran.
    """
    digest, items = load_suite()
    chosen = [i for i in items if not cases_only or i.case in cases_only]
    if per_case is not None:
        kept: list[Item] = []
        for case_id in dict.fromkeys(i.case for i in chosen):
            kept += [i for i in chosen if i.case == case_id][:per_case]
        chosen = kept
    cases = demo_cases(i.case for i in chosen)
    sha = file_sha256(model_path)
    backend = LlamaBackend(model_path, n_threads=n_threads)
    try:
        encoder = load_encoder()
        start = time.perf_counter()
        report = evaluate(backend, encoder, chosen, cases, progress)
        fidelity_s = time.perf_counter() - start
        speed = speed_run(backend, encoder)
        threads = backend.n_threads
    finally:
        backend.close()
    turns = report.pop("turns")
    record: dict[str, Any] = {
        "kind": "edgetutor-model-qualification",
        "model": {"file": model_path.name, "sha256": sha, "size": model_path.stat().st_size},
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": describe(threads, measure_bandwidth=False),
        "edgetutor": __version__,
        "suite": {"digest": digest, "items": len(chosen), "of": len(items)},
        "complete_suite": len(chosen) == len(items),
        "retrieval": "hybrid" if encoder is not None else "lexical",
        "fidelity": report["total"],
        "splits": {k: v for k, v in report.items() if k != "total"},
        "fidelity_s": round(fidelity_s, 1),
        "speed": speed,
        "thresholds": THRESHOLDS,
        "turns": turns,
    }
    ok, why = verdict(record)
    record["qualifies"] = ok
    record["why_not"] = why
    return record, write_record(record)


def format_report(name: str, f: dict[str, Any]) -> list[str]:
    """The evaluation report's lines for one model and one set of turns (see `summarise`)."""
    reasons = ", ".join(f"{k} {v}" for k, v in f["rejected_by_reason"].items()) or "none"
    cuts = ", ".join(f"{k} {v}" for k, v in f["cut_by_reason"].items()) or "none"
    lines = [
        f"{name}: {f['questions']} questions, {f['drafts']} model drafts",
        f"  accepted {f['accepted']} ({f['acceptance']:.0%}), of which {f['accepted_after_cut']} after "
        f"dropping a failing tail ({cuts})",
        f"  rejected {f['rejected']}: {reasons}",
        f"  accepted replies that differ from the authored answer: {f['differ_from_authored']} "
        f"({f['variety']:.0%}); not near-copies (similarity < {NEAR_COPY}): {f['not_near_copies']} "
        f"({f['novelty']:.0%}); median similarity {f['median_similarity']}",
        f"  violations in accepted replies (independent checker): {f['violations']}",
        f"  drafts the checker flags: {f['drafts_flagged_by_checker']}, of which the guard rejected "
        f"{f['flagged_drafts_rejected']}",
        f"  guard time per turn: median {f['guard_ms_median']} ms, p95 {f['guard_ms_p95']} ms",
    ]
    for v in f["violation_examples"]:
        lines.append(f"    VIOLATION {v['case']}: {v['q']!r} -> {v['reply']!r}: {'; '.join(v['why'])}")
    return lines


def format_record(record: dict[str, Any]) -> str:
    """A qualification record for people."""
    s = record["speed"]
    lines = format_report(record["model"]["file"], record["fidelity"])
    for split, f in record.get("splits", {}).items():
        lines += ["  " + line for line in format_report(split, f)]
    lines.append(
        f"  speed: first token {s['first_token_s']} s (first turn {s['first_turn_first_token_s']} s), "
        f"{s['tokens_per_s']} tokens/s"
    )
    if record["qualifies"]:
        lines.append("QUALIFIES: the patient may speak through this model on this device.")
    else:
        lines.append(
            "DOES NOT QUALIFY: " + "; ".join(record["why_not"]) + ". The patient uses authored answers."
        )
    return "\n".join(lines)
