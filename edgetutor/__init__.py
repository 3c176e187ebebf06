"""EdgeTutor: an offline clinical case-player."""

__version__ = "0.1.0"
