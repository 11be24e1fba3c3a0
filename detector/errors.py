"""Error hierarchy. Callers branch on type and on the `retriable` flag, never on messages."""

from __future__ import annotations


class DetectorError(Exception):
    """Base of every error TrailGuard raises on purpose."""

    retriable: bool = False


class ConfigError(DetectorError):
    """A configuration, scope or catalogue file is invalid. Raised at start-up only."""


class ParseError(DetectorError):
    """One record is malformed. The record is dead-lettered and counted; the run goes on.

    `origin` names where the record came from (file and line or index, topic and offset).
    """

    def __init__(self, message: str, *, origin: str = "", raw: object = None) -> None:
        super().__init__(f"{origin}: {message}" if origin else message)
        self.reason = message
        self.origin = origin
        self.raw = raw


class TransientError(DetectorError):
    """A dependency failed in a way that may succeed when tried again."""

    retriable = True


class StateError(DetectorError):
    """The state store is unusable or inconsistent."""
