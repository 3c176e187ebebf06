"""The coordinator hub: enrollment, event ingest, USB bundle import, reports and the dashboard."""

from __future__ import annotations

from ..errors import EdgeTutorError


class HubError(EdgeTutorError):
    """The hub refused something (a token, a device, a bundle, a pack); nothing was written.

    `status` is the HTTP status the API answers with when the refusal comes over the network.
    """

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status
