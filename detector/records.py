"""What readers hand the pipeline: decoded records, undecodable input, and the one loop that
turns both into parsed events or rejections.

Files, Kafka messages, SQS bodies and LookupEvents pages all arrive as a stream of `Record`
(a decoded JSON value and where it came from) or `BadInput` (what could not be decoded). Every
consumer (replay, the service, the router) parses them the same way through `parse_items`, so
a bad record is rejected with the same reason wherever it turns up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from detector.core.events import CloudTrailEvent
from detector.core.parse import parse_record
from detector.errors import ParseError


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded CloudTrail record and where it came from ("file:line 3", "file:Records[7]")."""

    origin: str
    value: Any


@dataclass(frozen=True, slots=True)
class BadInput:
    """Input that could not be decoded as a record, kept for the dead-letter file."""

    origin: str
    reason: str
    raw: Any


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that did not become an event: where, why, and what it was."""

    origin: str
    reason: str
    raw: Any
    # True when the input was not even JSON (BadInput); False when it was JSON but not a
    # CloudTrail record. Metrics tell the two apart.
    undecodable: bool


def parse_items(
    items: Iterable[Record | BadInput], reject: Callable[[Rejection], None]
) -> Iterator[tuple[Record, CloudTrailEvent]]:
    """Parse each record into an event (yielded with the record it came from); hand every
    failure to `reject` and carry on."""
    for item in items:
        if isinstance(item, BadInput):
            reject(Rejection(item.origin, item.reason, item.raw, undecodable=True))
            continue
        try:
            event = parse_record(item.value)
        except ParseError as exc:
            reject(Rejection(item.origin, exc.reason, item.value, undecodable=False))
            continue
        yield item, event
