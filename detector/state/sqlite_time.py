"""How the SQLite stores keep times: UTC text of a fixed width, to the microsecond
("2025-12-08T10:07:54.000000Z"), so that comparing two as text compares the times. A naive
time is taken as UTC, as everywhere in TrailGuard."""

from __future__ import annotations

from datetime import UTC, datetime

from detector.core.timestamps import iso_micros

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(value: datetime) -> str:
    return iso_micros(value)


def stamp_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso_micros(value)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
