"""Read a GGUF model file's metadata in pure Python, without llama.cpp.

llama.cpp can abort the whole process on a malformed file, so every model is checked here first:
the header, every key/value pair, every tensor description, and that the tensor data the header
promises is really in the file. The file is memory-mapped and only the header region is touched,
so a 100 MB model is read in a few milliseconds; big arrays (the tokenizer's vocabulary and merges)
are skipped without being turned into Python objects.

Format reference: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import math
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)

# Real models have hundreds to a few thousand tensors and a few dozen keys; anything far beyond
# that is a corrupt header, and refusing it early avoids looping over billions of phantom entries.
MAX_TENSORS = 1 << 20
MAX_KV = 1 << 16
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NESTING = 4
# Arrays up to this length are kept in `GGUFInfo.metadata`; longer ones (vocabularies) are skipped.
SMALL_ARRAY = 64
DEFAULT_ALIGNMENT = 32

# GGUF value types -> struct format of one scalar.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = range(10)
_UINT64, _INT64, _FLOAT64 = 10, 11, 12
_SCALAR_FORMAT = {
    _UINT8: "B",
    _INT8: "b",
    _UINT16: "H",
    _INT16: "h",
    _UINT32: "I",
    _INT32: "i",
    _FLOAT32: "f",
    _BOOL: "?",
    _UINT64: "Q",
    _INT64: "q",
    _FLOAT64: "d",
}
_SCALAR_SIZE = {t: struct.calcsize("<" + f) for t, f in _SCALAR_FORMAT.items()}

# llama.cpp's `enum llama_ftype` (include/llama.h), the value of `general.file_type`.
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}
_FTYPE_GUESSED = 1024  # a flag llama.cpp may OR into the file type

# ggml's `enum ggml_type` -> (name, elements per block, bytes per block), from ggml.h and
# gguf-py's GGML_QUANT_SIZES. Types missing here are accepted; only their size is not checked.
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class GGUFInfo:
    """What EdgeTutor needs to know about a model file before (or instead of) loading it."""

    path: Path
    size_bytes: int
    version: int
    architecture: str | None
    name: str | None
    parameters: int
    quantisation: str | None
    context_length: int | None
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    bos_token: str | None = None
    eos_token: str | None = None
    add_bos_token: bool | None = None
    tensor_count: int = 0
    # Scalars and short arrays only; the vocabulary and merges are never materialised.
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class _Truncated(Exception):
    """Internal: a read ran past the end of the file."""


class _Bad(Exception):
    """Internal: the header holds something no valid GGUF file holds."""


class _Reader:
    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0

    def take(self, n: int) -> int:
        """Reserve n bytes and return where they start."""
        start = self.pos
        if n < 0 or start + n > self.size:
            raise _Truncated
        self.pos = start + n
        return start

    def u32(self) -> int:
        return int(_U32.unpack_from(self.buf, self.take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self.buf, self.take(8))[0])

    def string(self) -> str:
        n = self.u64()
        start = self.take(n)
        return self.buf[start : start + n].decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        # The hot loop of the whole reader (~100k vocabulary entries): the error from reading past
        # the end (OverflowError once a corrupt length has thrown pos past 2**63) stands in for a
        # bounds check on every element.
        pos, size, buf, unpack = self.pos, self.size, self.buf, _U64.unpack_from
        try:
            for _ in range(count):
                pos += 8 + unpack(buf, pos)[0]
        except (struct.error, OverflowError):
            raise _Truncated from None
        if pos > size:
            raise _Truncated
        self.pos = pos

    def value(self, vtype: int, depth: int = 0) -> Any:
        """Read one value; arrays longer than SMALL_ARRAY are skipped and returned as None."""
        fmt = _SCALAR_FORMAT.get(vtype)
        if fmt is not None:
            return struct.unpack_from("<" + fmt, self.buf, self.take(_SCALAR_SIZE[vtype]))[0]
        if vtype == _STRING:
            return self.string()
        if vtype != _ARRAY:
            raise _Bad(f"unknown value type {vtype} at byte {self.pos - 4}")
        if depth >= MAX_NESTING:
            raise _Bad(f"arrays nested more than {MAX_NESTING} deep at byte {self.pos}")
        etype = self.u32()
        count = self.u64()
        if count > self.size - self.pos:  # every element takes at least one byte
            raise _Truncated
        efmt = _SCALAR_FORMAT.get(etype)
        if efmt is not None:
            start = self.take(count * _SCALAR_SIZE[etype])
            if count > SMALL_ARRAY:
                return None
            return list(struct.unpack_from(f"<{count}{efmt}", self.buf, start))
        if etype == _STRING and count > SMALL_ARRAY:
            self.skip_strings(count)
            return None
        if etype not in (_STRING, _ARRAY):
            raise _Bad(f"unknown array element type {etype} at byte {self.pos - 12}")
        items = [self.value(etype, depth + 1) for _ in range(count)]
        return items if count <= SMALL_ARRAY else None

    def string_at(self, start: int, count: int, index: int) -> str | None:
        """The index-th element of a string array whose elements begin at `start`."""
        if not 0 <= index < count:
            return None
        saved = self.pos
        self.pos = start
        self.skip_strings(index)
        text = self.string()
        self.pos = saved
        return text


def _fail(path: Path, why: str) -> ModelError:
    return ModelError(f"{path}: {why}")


def _sniff(head: bytes) -> str:
    """Name what a non-GGUF file probably is, for files that are commonly mistaken for models."""
    if head.startswith(b"version https://git-lfs"):
        return "not a GGUF file (a Git LFS pointer: fetch the real file with git lfs pull)"
    if head.lstrip()[:1] == b"<":
        return "not a GGUF file (an HTML/XML page, probably a failed download)"
    if head.startswith(b"ggjt") or head.startswith(b"ggml") or head.startswith(b"lmgg"):
        return "not a GGUF file (an old GGML model: convert it to GGUF)"
    return "not a GGUF file"


def read_info(path: str | Path) -> GGUFInfo:
    """Read and validate the metadata of the GGUF file at `path`.

    Raises ModelError (message names the file) when the file is missing, unreadable, empty, not a
    GGUF file, an unsupported GGUF version, truncated ("truncated at byte N"), or has a corrupt
    header (absurd counts, unknown value types).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            if size == 0:
                raise _fail(path, "is empty (not a GGUF file)")
            if size < 4:
                raise _fail(path, "not a GGUF file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                if buf[:4] != MAGIC:
                    raise _fail(path, _sniff(buf[:64]))
                return _parse(path, buf, size)
    except FileNotFoundError:
        raise _fail(path, "no such model file") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not a GGUF file") from None
    except OSError as err:
        raise _fail(path, f"cannot read: {err.strerror or err}") from None


def _parse(path: Path, buf: mmap.mmap, size: int) -> GGUFInfo:
    r = _Reader(buf, size)
    try:
        r.take(4)
        version = r.u32()
        if version not in SUPPORTED_VERSIONS:
            if version & 0xFFFF == 0 and version >> 24 in SUPPORTED_VERSIONS:
                raise _Bad("big-endian GGUF files are not supported")
            raise _Bad(f"GGUF version {version} is not supported (only 2 and 3)")
        n_tensors = r.u64()
        n_kv = r.u64()
        if n_tensors > MAX_TENSORS:
            raise _Bad(f"implausible tensor count {n_tensors} (corrupt header)")
        if n_kv > MAX_KV:
            raise _Bad(f"implausible metadata key count {n_kv} (corrupt header)")

        meta: dict[str, Any] = {}
        tokens_at: tuple[int, int] | None = None  # (first element offset, count)
        for _ in range(n_kv):
            key = r.string()
            vtype = r.u32()
            if key == "tokenizer.ggml.tokens" and vtype == _ARRAY:
                # Remember where the vocabulary starts so the BOS/EOS strings can be fetched
                # afterwards without keeping ~100k strings around.
                etype, count = r.u32(), r.u64()
                if etype != _STRING:
                    raise _Bad("tokenizer.ggml.tokens is not a string array")
                tokens_at = (r.pos, count)
                r.skip_strings(count)
                continue
            value = r.value(vtype)
            if value is not None:
                meta[key] = value

        parameters = 0
        data_needed = 0  # bytes of tensor data after the aligned start, as far as types are known
        type_counts: Counter[int] = Counter()
        for _ in range(n_tensors):
            tname = r.string()
            n_dims = r.u32()
            if n_dims > MAX_DIMS:
                raise _Bad(f"tensor {tname!r} has {n_dims} dimensions (corrupt header)")
            dims = [r.u64() for _ in range(n_dims)]
            ttype = r.u32()
            offset = r.u64()
            elements = math.prod(dims)
            parameters += elements
            if n_dims >= 2:
                type_counts[ttype] += elements
            known = TENSOR_TYPES.get(ttype)
            nbytes = elements // known[1] * known[2] if known else 0
            data_needed = max(data_needed, offset + nbytes)

        alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise _Bad(f"invalid general.alignment {alignment!r}")
        data_start = -(-r.pos // alignment) * alignment
        if n_tensors and data_start + data_needed > size:
            raise _Bad(f"truncated at byte {size} (tensor data needs {data_start + data_needed} bytes)")

        bos_id = _int_or_none(meta.get("tokenizer.ggml.bos_token_id"))
        eos_id = _int_or_none(meta.get("tokenizer.ggml.eos_token_id"))
        bos = eos = None
        if tokens_at is not None:
            if bos_id is not None:
                bos = r.string_at(tokens_at[0], tokens_at[1], bos_id)
            if eos_id is not None:
                eos = r.string_at(tokens_at[0], tokens_at[1], eos_id)
    except _Truncated:
        raise _fail(path, f"truncated at byte {size}") from None
    except _Bad as err:
        raise _fail(path, str(err)) from None

    arch = _str_or_none(meta.get("general.architecture"))
    template = meta.get("tokenizer.chat_template")
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    return GGUFInfo(
        path=path,
        size_bytes=size,
        version=version,
        architecture=arch,
        name=_str_or_none(meta.get("general.name")),
        parameters=parameters,
        quantisation=_quantisation(meta.get("general.file_type"), type_counts),
        context_length=_int_or_none(meta.get(f"{arch}.context_length")) if arch else None,
        chat_template=template if isinstance(template, str) and template.strip() else None,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        bos_token=bos,
        eos_token=eos,
        add_bos_token=add_bos if isinstance(add_bos, bool) else None,
        tensor_count=n_tensors,
        metadata=meta,
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _quantisation(file_type: Any, type_counts: Counter[int]) -> str | None:
    """The file type's name; files without one are named after their commonest weight type."""
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        ftype = file_type & ~_FTYPE_GUESSED
        return FILE_TYPES.get(ftype, f"type {ftype}")
    if type_counts:
        ttype = type_counts.most_common(1)[0][0]
        known = TENSOR_TYPES.get(ttype)
        return known[0] if known else f"type {ttype}"
    return None
