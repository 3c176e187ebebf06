"""The pack manifest: what a publisher signs.

`manifest.json` lists every file in the pack with its size and SHA-256; `manifest.sig` is the
Ed25519 signature over the exact bytes of `manifest.json`. Nothing outside the manifest is trusted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PACK_FORMAT = 1
# A manifest for 1,000 cases is ~150 kB; anything far larger is not a manifest.
MAX_MANIFEST_BYTES = 8 * 1024 * 1024


def check_member_path(path: str) -> str | None:
    """Why `path` is not a safe pack member name, or None if it is.

    Members are relative POSIX paths of plain segments: no absolute paths, no drive letters,
    no backslashes, no `.` or `..` segments, no control characters.
    """
    if not path or len(path) > 255:
        return "empty or too long"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute path"
    if "\\" in path:
        return "backslash in path"
    if any(ord(c) < 32 for c in path):
        return "control character in path"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "'..', '.' or empty segment in path"
    return None


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int = Field(ge=0)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1]
    pack_id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)]
    version: int = Field(ge=1)
    title: str
    publisher: str
    publisher_key_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
    created: dt.datetime
    expires: dt.date | None = None
    files: list[FileEntry]

    @field_validator("created")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("created must carry a timezone")
        return value

    def content_digest(self) -> str:
        """SHA-256 over the sorted file list: equal for two builds of the same files."""
        lines = "".join(f"{f.path}\0{f.size}\0{f.sha256}\n" for f in sorted(self.files, key=lambda f: f.path))
        return hashlib.sha256(lines.encode()).hexdigest()

    def to_bytes(self) -> bytes:
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
