"""A recorded encounter: an installed case, a model (or none), the trainee, the database.

`Session` is what the CLI (`edgetutor run`) and the app drive: every action goes through
`Encounter.act` and the turn is committed to SQLite before the next one starts, so a killed
process loses at most the turn in progress and the attempt can be resumed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cases.loader import load_case
from ..cases.schema import Case
from ..errors import EdgeTutorError, ModelError
from ..packs.install import CaseEntry, PackStore
from ..patient.embed import Embedder, load_encoder
from ..patient.encounter import Encounter, Reply
from ..patient.llm import Backend, LlamaBackend
from ..patient.models import select
from ..scoring.checklist import score as score_case
from ..scoring.debrief import debrief, transcript_from_turns
from ..store.db import Attempt, Store
from ..sync.events import case_info
from . import open_store
from .qualify import allow_unqualified, status


@dataclass
class ModelChoice:
    """The model in use, or why the patient speaks authored answers only."""

    name: str | None
    path: str | None = None
    load_s: float = 0.0
    error: str | None = None  # why no model is in use (authored-answers mode)
    note: str | None = None  # a short status-bar reason (e.g. "SmolLM2... not qualified")


def load_model(spec: str | None, no_model: bool = False) -> tuple[Any | None, ModelChoice]:
    """Load the selected model if it qualifies (service/qualify.py). A missing, broken or unqualified
    model is not fatal: the encounter runs in authored-answers mode and `ModelChoice.error` says
    why. EDGETUTOR_UNQUALIFIED=1 lets an unqualified model speak (development and evaluation)."""
    if no_model:
        return None, ModelChoice(None, error="authored-answers mode (--no-model)")
    try:
        entry = select(spec)
        note = None
        info = entry.info
        # A broken file, or one that is no chat model, is loaded below so the real problem is named.
        if info is not None and info.architecture and info.chat_template:
            state = status(entry.path)
            if not state.qualifies and not allow_unqualified():
                return None, ModelChoice(
                    None,
                    str(entry.path),
                    error=(
                        f"authored-answers mode: {entry.name} is not qualified ({state.reason}); "
                        f"run: edgetutor models qualify {entry.name}"
                    ),
                    note=f"{entry.name} not qualified",
                )
            if not state.qualifies:
                note = f"model {entry.name} (unqualified)"
        start = time.perf_counter()
        backend = LlamaBackend(entry.path)
        return backend, ModelChoice(entry.name, str(entry.path), time.perf_counter() - start, note=note)
    except ModelError as err:
        return None, ModelChoice(None, error=f"authored-answers mode: {err}")


@dataclass
class Session:
    case: Case
    entry: CaseEntry
    store: Store
    attempt: Attempt
    encounter: Encounter
    model: ModelChoice
    replies: list[Reply] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        case_id: str,
        *,
        trainee: str = "trainee",
        backend: Backend | None = None,
        model: ModelChoice | None = None,
        resume: str | None = None,
        store: Store | None = None,
        encoder: Embedder | None = None,
    ) -> Session:
        """Open (or resume) an attempt on an installed case. Raises EdgeTutorError/CasePackError."""
        entry = PackStore().case(case_id)
        case = load_case(entry.file)
        store = store or open_store()
        store.mark_interrupted_stale()
        model = model or ModelChoice(getattr(backend, "name", None))
        encounter = Encounter(case, backend, encoder if encoder is not None else load_encoder())
        if resume:
            attempt = store.attempt(resume)
            if attempt.case_id != case.id:
                raise EdgeTutorError(f"attempt {resume} is for case {attempt.case_id}, not {case.id}")
            attempt = store.resume(resume)
            session = cls(case, entry, store, attempt, encounter, model)
            for turn in store.turns(attempt.id):
                encounter.replay(
                    {
                        "kind": turn.kind,
                        "utterance": turn.utterance,
                        "reply": turn.reply,
                        "source": turn.source,
                        "matched": turn.matched,
                        "guard": turn.guard,
                    }
                )
            return session
        person = store.trainee(trainee)
        attempt = store.start_attempt(
            person, entry.pack_id, entry.pack_version, entry.pack_digest, case.id, case.version, model.name
        )
        session = cls(case, entry, store, attempt, encounter, model)
        session._record(encounter.opening())
        return session

    def _record(self, reply: Reply) -> None:
        self.store.record_turn(
            self.attempt.id,
            reply.kind,  # type: ignore[arg-type]
            reply.utterance,
            reply.matched,
            reply.text,
            reply.source,  # type: ignore[arg-type]
            reply.guard,
            reply.timings,
        )
        self.replies.append(reply)

    def act(self, line: str, on_token: Callable[[str], None] | None = None) -> Reply:
        """One action, recorded before returning. Raises EdgeTutorError once the encounter ended."""
        reply = self.encounter.act(line, on_token)
        self._record(reply)
        if reply.kind == "diagnose":
            self.store.set_answer(self.attempt.id, diagnosis=self.encounter.diagnosis)
        elif reply.kind == "plan":
            self.store.set_answer(self.attempt.id, plan=self.encounter.plan)
        elif reply.kind == "end":
            result, _ = self.score(ended=True)
            self.attempt = self.store.finish_attempt(self.attempt.id, result.as_dict(), case_info(self.case))
        return reply

    def play(self, lines: Iterable[str], on_reply: Callable[[str, Reply], None] | None = None) -> None:
        """Play script lines (blank lines and `#` comments skipped) until the end or `end`."""
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            reply = self.act(line)
            if on_reply:
                on_reply(line, reply)
            if self.encounter.ended:
                break

    def score(self, ended: bool = False) -> tuple[Any, dict[str, Any]]:
        """The checklist score and the itemised debrief of this encounter (deterministic)."""
        end = dt.datetime.now(dt.UTC) if ended else (self.attempt.ended or self.attempt.started)
        seconds = end - self.attempt.started
        transcript = transcript_from_turns(
            (r.record() for r in self.encounter.turns), seconds.total_seconds()
        )
        pack = {
            "id": self.entry.pack_id,
            "version": self.entry.pack_version,
            "digest": self.entry.pack_digest,
        }
        result = score_case(self.case, transcript, pack)
        return result, debrief(self.case, result)

    def summary(self) -> dict[str, Any]:
        questions = [r for r in self.encounter.turns if r.kind == "question" and r.matched]
        by_source: dict[str, int] = {}
        for r in questions:
            by_source[r.source] = by_source.get(r.source, 0) + 1
        rejected = sum(1 for r in questions if r.guard and r.guard.get("decision") == "reject")
        return {
            "turns": len(self.encounter.turns),
            "questions_with_facts": len(questions),
            "answered_by": by_source,
            "guard_rejections": rejected,
            "examined": self.encounter.examined,
            "ordered": self.encounter.ordered,
            "diagnosis": self.encounter.diagnosis,
            "plan": self.encounter.plan,
            "status": self.attempt.status,
        }
