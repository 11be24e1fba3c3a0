"""Times written the way CloudTrail writes them ("2023-07-10T11:42:18Z").

Every finding, alert and record carries its event's time as text, and `strftime` costs about
3 µs a call: more than some whole checks of the pipeline. Events of one stream share their
seconds, so the text is cached per instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=8192)
def iso_seconds(value: datetime) -> str:
    """The instant in UTC to the second. Equal instants in other zones share an entry, which
    is why the zone is converted here rather than assumed; a naive time is taken as UTC."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8192)
def iso_micros(value: datetime) -> str:
    """The instant in UTC to the microsecond, as the SQLite store keeps times (its text sorts
    in time order)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo is not None else value
