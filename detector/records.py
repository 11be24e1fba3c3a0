"""What readers hand the pipeline: decoded records, undecodable input, and the one loop that
turns both into parsed events or rejections.

Files, Kafka messages, SQS bodies and LookupEvents pages all arrive as a stream of `Record`
(a decoded JSON value and where it came from) or `BadInput` (what could not be decoded). Every
consumer (replay, the service, the router) parses them the same way through `parse_items`, so
a bad record is rejected with the same reason wherever it turns up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import orjson

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


class PackedItems(Sequence[Record | BadInput]):
    """Items with each record kept as its JSON text, decoded again one at a time when iterated.

    A decoded record is a tree of dicts, lists and strings that Python's garbage collector
    tracks; bytes it does not. Records that wait, decoded, in a queue or in a batch being
    worked through live long enough to reach the oldest generation, and every full pass of
    the collector then walks them, holding the event loop for as long. The watched directory
    packs what it reads, so a record is decoded only for the moment the pipeline parses it;
    the service packs the batches it keeps until the flush (to re-apply them after a
    rollback, or for their source to deliver them again after a nack).
    """

    __slots__ = ("_origins", "_values")

    def __init__(self, items: Iterable[Record | BadInput] = ()) -> None:
        self._origins: list[str] = []
        # bytes: a packed record's value; anything else is the item itself (BadInput, or a
        # record JSON cannot hold, such as an integer beyond 64 bits from a streamed file).
        self._values: list[bytes | Record | BadInput] = []
        for item in items:
            self.append(item)

    def append(self, item: Record | BadInput) -> None:
        self._origins.append(item.origin)
        self._values.append(_pack(item))

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> Record | BadInput: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record | BadInput]: ...

    def __getitem__(self, index: int | slice) -> Record | BadInput | Sequence[Record | BadInput]:
        if isinstance(index, slice):
            return [self._unpack(i) for i in range(*index.indices(len(self)))]
        return self._unpack(index)

    def __iter__(self) -> Iterator[Record | BadInput]:
        for origin, value in zip(self._origins, self._values, strict=True):
            yield Record(origin, orjson.loads(value)) if isinstance(value, bytes) else value

    def _unpack(self, index: int) -> Record | BadInput:
        value = self._values[index]
        if isinstance(value, bytes):
            return Record(self._origins[index], orjson.loads(value))
        return value


class EncodedMessages(Iterable[Record | BadInput]):
    """Messages kept as the bytes they arrived in (a Kafka value), each decoded only when
    iterated, by `decode`: the function that turns one message into the records it holds
    (one, a `Records` batch, an envelope) or the BadInput it is.

    A message is decoded at the moment the pipeline parses it, and again only if its batch
    is re-applied after a rollback. Decoded while they wait in the queues, a poll's records
    were about 3 times their size in memory (4 KB a CloudTrail record), trees that the
    garbage collector walks, and the service re-encoded each to keep it until the flush.
    """

    __slots__ = ("_decode", "_messages")

    def __init__(self, decode: Callable[[str, bytes], Iterable[Record | BadInput]]) -> None:
        self._decode = decode
        # (origin, message) or, for one that holds nothing to decode, its BadInput.
        self._messages: list[tuple[str, bytes] | BadInput] = []

    def append(self, origin: str, data: bytes) -> None:
        self._messages.append((origin, data))

    def reject(self, bad: BadInput) -> None:
        self._messages.append(bad)

    @property
    def messages(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Record | BadInput]:
        decode = self._decode
        for message in self._messages:
            if isinstance(message, BadInput):
                yield message
            else:
                yield from decode(*message)


def _pack(item: Record | BadInput) -> bytes | Record | BadInput:
    if isinstance(item, Record):
        try:
            return orjson.dumps(item.value)
        except orjson.JSONEncodeError:
            return item
    return item
