"""Every error a user can cause is one of these; the CLI prints `str(err)` on one line."""


class EdgeTutorError(Exception):
    """Base of all expected failures (bad input, refused packs, missing models...)."""


class CaseFormatError(EdgeTutorError):
    """A case or pack source file is malformed (message names the file, field and line)."""


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
