"""Dead letters: every rejected record, why, and where it came from, as JSON Lines.

One line per rejection: `{"origin", "error", "record"}`. `record` is the decoded JSON value,
or the text of a line that was not JSON; input that was not even valid UTF-8 is kept as its
original bytes in `raw_base64` (with `record` null), so nothing about what went wrong is lost.
A whole file that could not be read has its name as `origin` and a null `record`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import orjson


class DeadLetter(Protocol):
    """Where rejected records go."""

    def add(self, *, origin: str, error: str, raw: Any) -> None: ...


def entry(*, origin: str, error: str, raw: Any) -> dict[str, Any]:
    """The dead-letter record of one rejection."""
    if isinstance(raw, bytes | bytearray | memoryview):
        return {
            "origin": origin,
            "error": error,
            "record": None,
            "raw_base64": base64.b64encode(bytes(raw)).decode("ascii"),
        }
    return {"origin": origin, "error": error, "record": raw}


def encode(*, origin: str, error: str, raw: Any) -> bytes:
    """One JSON line; values JSON cannot hold are written as their repr."""
    return orjson.dumps(entry(origin=origin, error=error, raw=raw), default=repr) + b"\n"


class DeadLetterFile:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def add(self, *, origin: str, error: str, raw: Any) -> None:
        self.write_lines([encode(origin=origin, error=error, raw=raw)])

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Lines made by `encode` (held back by `BufferedDeadLetter`)."""
        self.count += len(lines)
        self._stream.writelines(lines)

    def flush(self) -> None:
        self._stream.flush()


class LazyDeadLetterFile:
    """A dead-letter file created on the first rejection only, so clean inputs leave none.

    `append` False truncates it first: one file per input, rewritten when the input is read
    again, holds each rejection once.
    """

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self._append = append
        self._file: DeadLetterFile | None = None
        self._handle: IO[bytes] | None = None
        self.count = 0

    def add(self, *, origin: str, error: str, raw: Any) -> None:
        self.write_lines([encode(origin=origin, error=error, raw=raw)])

    def write_lines(self, lines: Sequence[bytes]) -> None:
        if not lines:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab" if self._append else "wb")
            self._file = DeadLetterFile(self._handle)
        self._file.write_lines(lines)
        self.count += len(lines)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            self._handle.close()
            self._handle = None
            self._file = None


class InputDeadLetters:
    """The dead letters of a source that reads files: one per input file in a directory, or
    one shared file.

    `target` is a directory when it exists as one or is written with a trailing slash: each
    input `relative/name` gets `target/relative/name.rejected.jsonl`, rewritten by each
    delivery of the input. Any other path is one JSONL file every input appends to.
    """

    def __init__(self, target: str) -> None:
        self.path = Path(target)
        self.per_file = target.endswith("/") or self.path.is_dir()
        self._shared = None if self.per_file else LazyDeadLetterFile(self.path, append=True)
        self._open: dict[str, LazyDeadLetterFile] = {}

    def for_delivery(self, relative: str, *, resume: bool = False) -> LazyDeadLetterFile:
        """The dead letter of one delivery of the input `relative`; `resume`: the delivery
        goes on from a position part-way through the input, so what the earlier part
        dead-lettered is kept."""
        if self._shared is not None:
            return self._shared
        self.settle(relative)
        path = self.path / f"{relative}.rejected.jsonl"
        letter = LazyDeadLetterFile(path, append=resume)
        self._open[relative] = letter
        return letter

    def settle(self, relative: str) -> None:
        """Make what was written for `relative` durable (before its ack records it as done)."""
        letter = self._open.pop(relative, None)
        if letter is not None:
            letter.close()
        if self._shared is not None:
            self._shared.flush()


class BufferedDeadLetter:
    """A batch's rejections held as encoded lines until the batch is acknowledged.

    A file read as several batches writes each batch's lines to the file's dead letter in
    file order once the batch is settled, so a batch delivered again after a nack does not
    leave its rejections twice.
    """

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def add(self, *, origin: str, error: str, raw: Any) -> None:
        self.lines.append(encode(origin=origin, error=error, raw=raw))
