"""The application layer: what the CLI, the terminal app and the benchmarks call to play and keep
an encounter end to end, so none of them wires the parts together itself.

- `open_store()`: the device's database, opened with the key that signs each scored result;
- `session.Session`: start or resume an attempt on an installed case, act turn by turn (each
  turn committed before the next), finish, score, store and seal;
- `session.load_model()`: the chosen model if it qualifies on this device (`qualify`);
- `progress.progress_for()`: a trainee's progress over the installed cases.
"""

from __future__ import annotations

from pathlib import Path

from ..store.db import Store, open_db
from ..sync.seal import EventSealer


def open_store(path: Path | None = None) -> Store:
    """The database at `path` (default `home()/edgetutor.db`), sealing each scored attempt's
    result event with this device's key. Raises EdgeTutorError if it cannot be opened."""
    return open_db(path, sealer=EventSealer())
