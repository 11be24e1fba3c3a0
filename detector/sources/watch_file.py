"""One watched file read and delivered as bounded batches, and how far its processing got.

A file read whole into one batch put all of its records in memory, decoded, before the
first was processed, and the garbage collector's full passes over those objects (670,000
tracked objects, state included, by the end of a file of 100,000 records, against 150,000
now) held the event loop for seconds. The watched
directory reads a file `batch_records` items at a time instead, each step in a worker thread
(`FileReader`), keeps the records packed as JSON bytes (`PackedItems`) and hands each step
over as soon as it is read.

The position in a file is the number of its items (records and undecodable parts, in file
order) settled from its start: acknowledged, or dead-lettered. It is checkpointed, with the
file's size and modification time, each time it advances, so a restart goes on from there
and does not process again what the saved state already holds. Re-reading from the start
and relying on the eventID window to drop repeats would not do: the window is bounded
(`state.dedup_capacity`), so a file larger than it would be alerted on twice. A position is
only meaningful for the same content, which the stamp pins down.

Batches may be settled out of order (a nacked batch comes again after later ones were
acked); the position advances over the settled prefix only (`FileProgress`). Each batch's
rejected records are held back (`BufferedDeadLetter`) and written to the file's dead letter
as the prefix passes them, so the dead letter holds each rejection once and in file order,
and is flushed before the position that covers it is saved.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from detector.dead_letter import BufferedDeadLetter, LazyDeadLetterFile
from detector.records import BadInput, PackedItems, Record
from detector.sources.files import (
    READ_ERRORS,
    InputFile,
    UnreadableFile,
    describe_read_error,
    read_file,
)

logger = logging.getLogger(__name__)

Stamp = tuple[int, int]  # (size, mtime_ns): what "unchanged" means for a file
Positions = dict[str, tuple[Stamp, int]]  # relative path → stamp and position


@dataclass(frozen=True, slots=True)
class Step:
    """One read of up to `batch_records` items."""

    items: PackedItems
    first: int  # the index in the file of the first item
    ended: bool  # nothing follows: the file was read to its end, or could not be


class FileReader:
    """Reads one file in steps; `read` and `close` run in a worker thread, one at a time."""

    def __init__(self, path: Path, stamp: Stamp, *, start: int, batch_records: int) -> None:
        self.path = path
        self.stamp = stamp
        self._name = str(path)
        self._items: Iterator[Record | BadInput] = read_file(InputFile(self._name, path, stamp[0]))
        self._skip = start
        self._next = start
        self._size = batch_records
        # A read left running by a cancelled await finishes before `close` closes the file.
        self._lock = threading.Lock()

    def read(self) -> Step | None:
        """The next step, or None when the file vanished or changed since it was listed."""
        with self._lock:
            return self._read()

    def _read(self) -> Step | None:
        # Packed as they are read: each record is decoded again only when it is processed.
        items = PackedItems()
        ended = False
        try:
            if self._skip:
                # Settled in an earlier run: read past without handing them over again.
                for _ in itertools.islice(self._items, self._skip):
                    pass
                self._skip = 0
            # One by one, so what was read before an error is kept.
            for item in itertools.islice(self._items, self._size):
                items.append(item)
            ended = len(items) < self._size
        except FileNotFoundError:
            return None
        except READ_ERRORS as exc:
            # A truncated gzip or an unreadable file: the items read so far are kept (and
            # earlier steps were handed over already); the rest is dead-lettered as one.
            reason = f"cannot read the file: {describe_read_error(exc)}"
            items.append(UnreadableFile(self._name, reason, None))
            ended = True
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if (info.st_size, info.st_mtime_ns) != self.stamp:
            return None
        step = Step(items, self._next, ended)
        self._next += len(items)
        if ended:
            self._close()
        return step

    def close(self) -> None:
        """Release the open file of a read that stops before its end."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


@dataclass(slots=True, eq=False)
class Part:
    """One batch of a file: where it lies, and the rejections of its current delivery."""

    first: int
    count: int
    letter: BufferedDeadLetter = field(default_factory=BufferedDeadLetter)
    settled: bool = False
    lost: bool = False  # dropped after its redeliveries, not dead-lettered


@dataclass(slots=True, eq=False)
class FileProgress:
    """Which of one file's batches were settled, and the position they add up to."""

    relative: str
    stamp: Stamp
    position: int  # items settled from the start of the file
    dead_letter: LazyDeadLetterFile | None
    ended: bool = False  # the last batch was handed over
    abandoned: bool = False  # stopped before the end: changed, vanished, or stopping
    lost: bool = False  # a batch was dropped: the position stops before it for good
    _parts: deque[Part] = field(default_factory=deque)  # handed over, not yet passed

    def add(self, step: Step) -> Part:
        part = Part(step.first, len(step.items))
        self._parts.append(part)
        if step.ended:
            self.ended = True
        return part

    def settle(self, part: Part) -> bool:
        """Record `part` as acknowledged; True when the position moved (or, behind a lost
        batch, the rejections held back were written): the checkpoint is to be saved."""
        part.settled = True
        moved = False
        while self._parts and self._parts[0].settled and not self._parts[0].lost:
            passed = self._parts.popleft()
            self._write(passed)
            self.position = passed.first + passed.count
            moved = True
        if self._parts and self.outstanding == 0:
            # Held up by a lost batch, and nothing more will move the position: what the
            # later batches rejected is written now rather than never (a restart reads them
            # again, so it may be written twice).
            for rest in self._parts:
                self._write(rest)
            self._parts.clear()
            moved = True
        if moved and self.dead_letter is not None:
            self.dead_letter.flush()
        return moved

    def lose(self, part: Part) -> None:
        """`part` could not even be dead-lettered: the position never passes it."""
        self.lost = part.lost = True
        self.settle(part)

    def _write(self, part: Part) -> None:
        if self.dead_letter is not None:
            self.dead_letter.write_lines(part.letter.lines)
        part.letter.lines = []

    @property
    def outstanding(self) -> int:
        """Batches handed over and not yet settled."""
        return sum(1 for part in self._parts if not part.settled)

    @property
    def complete(self) -> bool:
        """Every item of the file was handed over and settled."""
        return self.ended and not self.abandoned and not self.lost and not self._parts

    @property
    def finished(self) -> bool:
        """Nothing more of this read will be handed over or settled."""
        return (self.ended or self.abandoned) and self.outstanding == 0


def delete_unchanged(path: Path, stamp: Stamp) -> bool:
    """Delete a processed file unless it was rewritten since it was read; True when gone."""
    try:
        info = path.stat()
        if (info.st_size, info.st_mtime_ns) != stamp:
            return False
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        logger.warning("cannot delete %s: %s", path, exc)
        return False
    return True


def encode_checkpoint(done: Mapping[str, Stamp], positions: Positions) -> str:
    value: dict[str, list[int]] = {key: list(stamp) for key, stamp in done.items()}
    for key, (stamp, position) in positions.items():
        value[key] = [*stamp, position]
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def decode_checkpoint(
    value: str,
) -> tuple[dict[str, Stamp], Positions] | None:
    """The checkpoint's done files ([size, mtime_ns]) and files part-way ([size, mtime_ns,
    position]); None when it is neither."""
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    done: dict[str, Stamp] = {}
    positions: Positions = {}
    for key, entry in decoded.items():
        if not (
            isinstance(entry, list)
            and len(entry) in (2, 3)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in entry)
        ):
            return None
        if len(entry) == 2:
            done[key] = (entry[0], entry[1])
        else:
            positions[key] = ((entry[0], entry[1]), entry[2])
    return done, positions
