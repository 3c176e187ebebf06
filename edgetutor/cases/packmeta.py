"""`pack.yaml`: what an educator writes next to the cases to name and version a pack."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from .schema import Id, Strict, Text


class PackMeta(Strict):
    id: Id
    # An integer that only ever goes up: devices refuse a lower version than they have.
    version: int = Field(ge=1)
    title: Text
    description: Text
    publisher: Text
    # Optional end of validity. Expired packs still install, with a warning: devices often
    # have no reliable clock.
    expires: dt.date | None = None
    license: str | None = None
