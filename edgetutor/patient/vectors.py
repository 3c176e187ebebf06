"""Sentence vectors of a case's texts, computed once and kept in the cache folder.

Embedding a case's ~400 fact texts takes over a second on a 2-core laptop (more on a Pi), which
would be paid at every case start. The vectors are saved, float32 exactly as computed (so a case
retrieves the same way at its first play and every later one), under a name made from the
encoder's fingerprint and the texts themselves, with a checksum: a file from another encoder,
other texts or a damaged file is never used, only recomputed. The files are derived data and can
be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
from typing import TYPE_CHECKING

import numpy as np

from ..fsutil import atomic_write_bytes
from ..paths import cache_dir

if TYPE_CHECKING:
    from .embed import Embedder

MAGIC = b"ETVECS1\n"
_HEADER = struct.Struct("<I")


def _key(encoder: Embedder, texts: list[str]) -> str:
    h = hashlib.sha256(encoder.fingerprint.encode("utf-8"))
    for text in texts:
        h.update(b"\0" + text.encode("utf-8"))
    return h.hexdigest()


def cached_encode(encoder: Embedder, texts: list[str], label: str) -> np.ndarray:
    """`encoder.encode(texts)`, from the cache when it holds exactly these vectors."""
    key = _key(encoder, texts)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]
    path = cache_dir() / "vectors" / f"{safe}-{key[:20]}.vec"
    with contextlib.suppress(OSError, ValueError, struct.error, UnicodeDecodeError):
        data = path.read_bytes()
        if data.startswith(MAGIC):
            (size,) = _HEADER.unpack_from(data, len(MAGIC))
            start = len(MAGIC) + _HEADER.size
            header = json.loads(data[start : start + size].decode("utf-8"))
            body = data[start + size :]
            shape = (len(texts), encoder.dim)
            if (
                isinstance(header, dict)
                and header.get("key") == key
                and header.get("shape") == list(shape)
                and header.get("sha256") == hashlib.sha256(body).hexdigest()
                and len(body) == shape[0] * shape[1] * 4
            ):
                return np.frombuffer(body, dtype="<f4").reshape(shape).copy()
    vectors = np.ascontiguousarray(encoder.encode(texts), dtype="<f4")
    body = vectors.tobytes()
    header = json.dumps(
        {"key": key, "shape": list(vectors.shape), "sha256": hashlib.sha256(body).hexdigest()}
    ).encode("utf-8")
    with contextlib.suppress(OSError):  # a full or read-only disk costs the next start the time
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, MAGIC + _HEADER.pack(len(header)) + header + body)
    return vectors.astype(np.float32, copy=False)
