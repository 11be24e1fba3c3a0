"""Dead letters: every rejected record, why, and where it came from, as JSON Lines.

One line per rejection: `{"origin", "error", "record"}`. `record` is the decoded JSON value,
or the text of a line that was not JSON; input that was not even valid UTF-8 is kept as its
original bytes in `raw_base64` (with `record` null), so nothing about what went wrong is lost.
A whole file that could not be read has its name as `origin` and a null `record`.
"""

from __future__ import annotations

import base64
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
        self.count += 1
        self._stream.write(encode(origin=origin, error=error, raw=raw))

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
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab" if self._append else "wb")
            self._file = DeadLetterFile(self._handle)
        self._file.add(origin=origin, error=error, raw=raw)
        self.count += 1

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

    def for_delivery(self, relative: str) -> DeadLetter:
        """The dead letter of one delivery of the input `relative`."""
        if self._shared is not None:
            return self._shared
        self.settle(relative)
        letter = LazyDeadLetterFile(self.path / f"{relative}.rejected.jsonl", append=False)
        self._open[relative] = letter
        return letter

    def settle(self, relative: str) -> None:
        """Make what was written for `relative` durable (before its ack records it as done)."""
        letter = self._open.pop(relative, None)
        if letter is not None:
            letter.close()
        if self._shared is not None:
            self._shared.flush()
