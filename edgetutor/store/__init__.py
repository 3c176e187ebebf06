"""The local database of trainees, attempts and turns. Importing this opens nothing: call `open_db()`."""

from .db import (
    Attempt,
    AttemptStatus,
    Store,
    Trainee,
    Turn,
    TurnKind,
    TurnSource,
    default_path,
    open_db,
)

__all__ = [
    "Attempt",
    "AttemptStatus",
    "Store",
    "Trainee",
    "Turn",
    "TurnKind",
    "TurnSource",
    "default_path",
    "open_db",
]
