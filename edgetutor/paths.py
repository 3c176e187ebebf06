"""Where EdgeTutor keeps a user's data. Nothing is created at import time."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The per-user data folder: `EDGETUTOR_HOME`, else the platform's user data dir.

    Holds the trust store (`trust.json`), installed packs (`packs/`) and, later, the database.
    The folder is not created here; writers create what they need.
    """
    env = os.environ.get("EDGETUTOR_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("edgetutor", appauthor=False))


def packs_dir() -> Path:
    return home() / "packs"


def trust_file() -> Path:
    return home() / "trust.json"


def cache_dir() -> Path:
    """Derived data that can be rebuilt at any time (the taxonomy's embeddings):
    `EDGETUTOR_CACHE`, else `cache/` in the data folder."""
    env = os.environ.get("EDGETUTOR_CACHE")
    if env:
        return Path(env).expanduser()
    return home() / "cache"
