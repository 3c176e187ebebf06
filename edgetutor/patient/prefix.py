"""Persisted prefix state: the model's memory of a case's stable prompt, kept on disk per case.

Every turn's prompt starts with the same tokens for a given case (the system prompt with the
persona, and the example exchange: see prompt.py), and only the last message changes. Evaluating
those ~260 tokens is most of the first reply's wait (seconds on a Raspberry Pi with a 1B model).
So after they are evaluated once, llama.cpp's state for them (the KV cache) is written to
`cache_dir()/prefix/`, and the next time the case starts it is read back instead of evaluated.

A state file is used only if everything that decides its contents matches: the model file's
SHA-256, the prompt layout version, the case id and version, and the exact prefix tokens; and its
own SHA-256 checks out. Anything else (a file from another model, a damaged or truncated file, an
older prompt layout) is ignored and rebuilt: the patient never answers from a mismatched cache.
The files are derived data and can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_write_bytes
from ..paths import cache_dir

# Bump when prompt.py changes what comes before the last message (the layout, not a case).
PROMPT_VERSION = "1"
MAGIC = b"ETPREFIX1\n"
_HEADER = struct.Struct("<I")  # length of the JSON header that follows MAGIC


@dataclass(frozen=True)
class PrefixState:
    tokens: list[int]
    state: bytes


def prefix_dir() -> Path:
    return cache_dir() / "prefix"


def common_prefix(variants: list[list[int]]) -> list[int]:
    """The tokens every variant starts with (the part of the prompt that never changes)."""
    if not variants:
        return []
    first = variants[0]
    n = len(first)
    for other in variants[1:]:
        i = 0
        for a, b in zip(first, other, strict=False):
            if a != b:
                break
            i += 1
        n = min(n, i)
    return list(first[:n])


_model_hashes: dict[tuple[str, int, int], str] = {}


def model_sha256(path: Path) -> str:
    """The model file's SHA-256, computed once per file version (size and modification time) and
    remembered in the cache folder, so a 1 GB model is hashed once, not at every start."""
    st = path.stat()
    ident = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if ident in _model_hashes:
        return _model_hashes[ident]
    memo = prefix_dir() / "model-hashes.json"
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(memo.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            known = {str(k): str(v) for k, v in loaded.items()}
    key = f"{ident[0]}|{ident[1]}|{ident[2]}"
    digest = known.get(key)
    if digest is None or len(digest) != 64:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        known[key] = digest
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(memo, json.dumps(known, sort_keys=True).encode("utf-8"))
    _model_hashes[ident] = digest
    return digest


def state_key(model_hash: str, case_key: str, tokens: list[int]) -> str:
    """What a state file must match: model, prompt layout, case and the exact prefix tokens."""
    h = hashlib.sha256()
    h.update(f"{model_hash}\0{PROMPT_VERSION}\0{case_key}\0".encode())
    h.update(struct.pack(f"<{len(tokens)}i", *tokens))
    return h.hexdigest()


def _file_name(case_key: str, key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in case_key)[:80]
    return f"{safe}-{key[:16]}.state"


def state_path(case_key: str, key: str) -> Path:
    return prefix_dir() / _file_name(case_key, key)


def load(case_key: str, key: str, tokens: list[int]) -> PrefixState | None:
    """The saved state for exactly these inputs, or None (missing, stale or damaged: rebuilt)."""
    path = state_path(case_key, key)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            return None
        (size,) = _HEADER.unpack_from(data, len(MAGIC))
        start = len(MAGIC) + _HEADER.size
        header = json.loads(data[start : start + size].decode("utf-8"))
        body = data[start + size :]
        if (
            not isinstance(header, dict)
            or header.get("key") != key
            or header.get("tokens") != tokens
            or header.get("sha256") != hashlib.sha256(body).hexdigest()
            or header.get("bytes") != len(body)
        ):
            return None
    except (struct.error, ValueError, UnicodeDecodeError):
        return None
    return PrefixState(list(tokens), body)


def save(case_key: str, key: str, tokens: list[int], state: bytes) -> Path | None:
    """Write the state atomically; None if it could not be written (a full disk costs only the
    saving: the encounter goes on, and the prefix is evaluated again next time)."""
    header = json.dumps(
        {
            "key": key,
            "case": case_key,
            "prompt_version": PROMPT_VERSION,
            "tokens": tokens,
            "bytes": len(state),
            "sha256": hashlib.sha256(state).hexdigest(),
        }
    ).encode("utf-8")
    path = state_path(case_key, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, MAGIC + _HEADER.pack(len(header)) + header + state)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None
    return path
