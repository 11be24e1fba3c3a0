"""Times written the way CloudTrail writes them ("2023-07-10T11:42:18Z").

Every finding, alert and record carries its event's time as text, and `strftime` costs about
3 µs a call: more than some whole checks of the pipeline. Events of one stream share their
seconds, so the text is cached per instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def iso_seconds(value: datetime) -> str:
    """The instant in UTC to the second; a naive time is taken as UTC."""
    return _seconds(_utc(value))


def iso_micros(value: datetime) -> str:
    """The instant in UTC to the microsecond, as the SQLite store keeps times (its text sorts
    in time order)."""
    return _micros(_utc(value))


def iso_instant(value: datetime) -> str:
    """The instant in UTC, to the microsecond only when it has any: how saved state keeps
    times (`datetime.fromisoformat` reads either back as an aware UTC time). A shard's
    flush writes every step time of every changed session, and most repeat from flush to
    flush, so the cache saves what `isoformat` would spend on them each time."""
    utc = _utc(value)
    return _micros(utc) if utc.microsecond else _seconds(utc)


def _utc(value: datetime) -> datetime:
    # The cache is keyed by the UTC time: two times of one zone compare equal on their wall
    # clock whatever their `fold`, so an hour repeated at a change of offset would share
    # an entry between two instants.
    if value.tzinfo is UTC or value.tzinfo is None:
        return value
    return value.astimezone(UTC)


@lru_cache(maxsize=8192)
def _seconds(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8192)
def _micros(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
