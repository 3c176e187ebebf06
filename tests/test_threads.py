"""EDGETUTOR_THREADS: how many threads llama.cpp uses (e.g. 3 on a 4-core Pi while the app runs)."""

from __future__ import annotations

import pytest

from edgetutor.errors import ModelError
from edgetutor.patient.llm import LlamaBackend, default_threads, physical_cores
from edgetutor.patient.models import embedded_model_path
from edgetutor.service.session import load_model


def test_default_is_one_thread_per_physical_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGETUTOR_THREADS", raising=False)
    assert default_threads() == physical_cores() >= 1


def test_the_variable_sets_the_real_backend_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    path = embedded_model_path()
    assert path is not None
    monkeypatch.setenv("EDGETUTOR_THREADS", "1")
    backend = LlamaBackend(path)
    try:
        assert backend.n_threads == 1
        assert "".join(backend.stream([{"role": "user", "content": "Say hello."}], max_tokens=4))
    finally:
        backend.close()


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5", "999"])
def test_a_bad_value_is_one_line_and_falls_back_to_authored_answers(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("EDGETUTOR_THREADS", bad)
    monkeypatch.setenv("EDGETUTOR_UNQUALIFIED", "1")  # get past the qualification gate to the load
    with pytest.raises(ModelError, match=r"^EDGETUTOR_THREADS must be a whole number from 1 to 256 \(got '"):
        default_threads()
    backend, choice = load_model(None)
    assert backend is None  # the encounter still runs, on the case's authored answers
    assert choice.error is not None and "EDGETUTOR_THREADS" in choice.error and "\n" not in choice.error
