"""Warming a pack: the stable prompt prefix of each of its cases evaluated once and its state
saved (patient/prefix.py), so that even the first play of a case answers its first question as
fast as the rest. Run by `edgetutor pack install --warm` while the pack is at hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..cases.loader import load_case
from ..errors import EdgeTutorError
from ..packs.install import PackStore
from ..patient.embed import load_encoder
from ..patient.llm import LlamaBackend
from ..patient.prompt import prefix_key, prefix_variants
from ..patient.retrieval import FactIndex
from .session import load_model


@dataclass
class WarmReport:
    model: str | None
    warmed: list[str] = field(default_factory=list)  # case ids whose state is saved (or was already)
    failed: list[str] = field(default_factory=list)  # "case-id: why"
    skipped: str | None = None  # why nothing was warmed (no model that may speak)


def warm_pack(
    pack_id: str,
    model_spec: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> WarmReport:
    """Save the prefix state of every case of the installed pack `pack_id` for the model that
    would speak (`model_spec`, else the default). A case that cannot be warmed is reported, not
    fatal: it is simply evaluated at its first play. Raises CasePackError if the pack is not
    installed."""
    entries = [e for e in PackStore().cases() if e.pack_id == pack_id]
    backend, choice = load_model(model_spec)
    if not isinstance(backend, LlamaBackend):
        return WarmReport(None, skipped=choice.error or "no model to warm for")
    report = WarmReport(choice.name)
    encoder = load_encoder()
    try:
        for n, entry in enumerate(entries, start=1):
            if on_progress:
                on_progress(n - 1, len(entries), entry.title)
            try:
                case = load_case(entry.file)
                if case.facts:
                    backend.prepare_prefix(prefix_key(case), prefix_variants(case))
                if encoder is not None:
                    FactIndex(case, encoder)  # the case's sentence vectors, computed and kept
                report.warmed.append(entry.id)
            except EdgeTutorError as err:
                report.failed.append(f"{entry.id}: {err}")
        if on_progress:
            on_progress(len(entries), len(entries), "")
    finally:
        backend.close()
    return report
