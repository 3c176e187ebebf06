"""Every error a user can cause is one of these; the CLI prints `str(err)` on one line."""


class EdgeTutorError(Exception):
    """Base of all expected failures (bad input, refused packs, missing models...)."""


class CaseFormatError(EdgeTutorError):
    """A case or pack source file is malformed (message names the file, field and line).

    `file`, `line` and `reason` repeat the parts of the message for callers that list problems.
    """

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.file, self.line, self.reason = file, line, reason


class CasePackError(EdgeTutorError):
    """A pack is refused (bad structure, rollback, no space...): nothing was installed."""


class SignatureError(CasePackError):
    """A pack's signature is missing, invalid, or made by a key the device does not trust."""


class TrustError(EdgeTutorError):
    """The trust store cannot do what was asked (unknown key, bad key file...)."""


class KeyFileError(EdgeTutorError):
    """A key file is missing, unreadable or not an Ed25519 key."""


class ModelError(EdgeTutorError):
    """A model file is missing or cannot be loaded."""


class SyncError(EdgeTutorError):
    """Results could not be synced."""


class ScriptError(EdgeTutorError):
    """A script of actions (`run --script`) is not usable text; nothing was played or stored."""
