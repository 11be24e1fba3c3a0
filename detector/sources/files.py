"""CloudTrail records from files, directories and stdin, in every shape CloudTrail uses.

Shapes: S3 log files `{"Records": [...]}`, JSON arrays, JSON Lines, single records and
EventBridge envelopes; any of them gzip-compressed (detected by magic bytes, not by name).
Everything is streamed: JSON Lines line by line, and large JSON documents element by element,
so memory stays flat however big the input.
"""

from __future__ import annotations

import gzip
import io
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from detector.core.parse import unwrap, unwrap_one
from detector.errors import ParseError
from detector.records import BadInput, Record
from detector.sources.screen import Skip, SkipReason, is_hidden, screen

# Below this size a JSON document is decoded in one call (fast); above it, streamed.
STREAM_DOCUMENTS_ABOVE = 32 * 1024 * 1024
STDIN = "-"
RECORDS_BATCH = re.compile(rb'\{\s*"Records"\s*:')
# What reading a file can raise besides a bad record: I/O errors (permission denied, EIO,
# a vanished file), truncated gzip (EOFError), corrupt gzip (zlib.error, BadGzipFile is an
# OSError) and undecodable streams.
READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str
    path: Path | None  # None for stdin
    size: int
    # Set for a FIFO, socket or device found while walking a directory: it is reported as
    # unreadable rather than read, since reading it could block or never end.
    special: str | None = None
    # A named pipe given on the command line (`replay <(zcat trail.gz)`): read as a stream.
    pipe: bool = False


@dataclass(frozen=True, slots=True)
class UnreadableFile(BadInput):
    """A whole input that could not be read (or read to its end): origin is the file name."""


def expand(paths: Sequence[str]) -> tuple[list[InputFile], list[Skip]]:
    """Files to read, in a stable order, and the files skipped with the reason.

    Files are judged by content (see `screen`), whether named or found in a directory walk.
    """
    files: list[InputFile] = []
    skipped: list[Skip] = []
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(name="<stdin>", path=None, size=0))
            continue
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_dir():
                    continue
                if is_hidden(child, path):
                    skipped.append(Skip(str(child), SkipReason.HIDDEN))
                    continue
                _add(child, files, skipped, walked=True)
        elif path.exists():
            _add(path, files, skipped, walked=False)
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")
    return files, skipped


def _add(path: Path, files: list[InputFile], skipped: list[Skip], *, walked: bool) -> None:
    try:
        info = path.stat()
    except OSError:
        # A broken link or a file gone since the listing: the reader reports it by name.
        files.append(InputFile(str(path), path, 0))
        return
    if not stat.S_ISREG(info.st_mode):
        if stat.S_ISFIFO(info.st_mode) and not walked:
            files.append(InputFile(str(path), path, 0, pipe=True))
        else:
            files.append(InputFile(str(path), path, 0, special=special_kind(info.st_mode)))
        return
    reason = screen(path)
    if reason is not None:
        skipped.append(Skip(str(path), reason))
    else:
        files.append(InputFile(str(path), path, info.st_size))


def special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def describe_read_error(exc: BaseException) -> str:
    """One line naming what went wrong, without the exception class jargon."""
    if isinstance(exc, EOFError):
        return f"truncated gzip: {exc}"
    if isinstance(exc, zlib.error | gzip.BadGzipFile):
        return f"corrupt gzip: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_input(
    source: InputFile,
    *,
    stdin: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Record | BadInput]:
    """`read_file`, with any read error turned into a final UnreadableFile for the file.

    The records read before the error are kept; the error ends that file only.
    """
    if source.special is not None:
        reason = f"cannot read the file: it is a {source.special}, not a regular file"
        yield UnreadableFile(source.name, reason, None)
        return
    try:
        yield from read_file(source, stdin=stdin, progress=progress)
    except READ_ERRORS as exc:
        yield UnreadableFile(source.name, f"cannot read the file: {describe_read_error(exc)}", None)


def read_file(
    source: InputFile,
    *,
    stdin: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Record | BadInput]:
    """Yield the records of one input, with a BadInput for each part that is not valid.

    `progress` is called with the number of (compressed) bytes read as reading advances.
    """
    if source.path is None:
        raw: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
        yield from _read_stream(source.name, _buffered(raw), size=None)
        return
    with source.path.open("rb", buffering=0) as handle:
        raw_reader: io.RawIOBase = _CountingReader(handle, progress) if progress else handle
        stream = io.BufferedReader(raw_reader, buffer_size=1024 * 1024)
        yield from _read_stream(source.name, stream, size=None if source.pipe else source.size)


class _CountingReader(io.RawIOBase):
    """Reports bytes as they are read, so a progress bar can follow one large file."""

    def __init__(self, raw: IO[bytes], report: Callable[[int], None]) -> None:
        self._raw = raw
        self._report = report

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._report(count)
        return int(count or 0)


def _buffered(handle: IO[bytes]) -> io.BufferedReader[Any]:
    if isinstance(handle, io.BufferedReader):
        return handle
    return io.BufferedReader(handle)


def _read_stream(
    name: str, stream: io.BufferedReader[Any], *, size: int | None
) -> Iterator[Record | BadInput]:
    """`size` is the byte size when known; unknown (stdin) means stream."""
    if stream.peek(2)[:2] == b"\x1f\x8b":
        # CloudTrail compresses about 10:1; judge the decoded size from the compressed one.
        streaming = size is None or size * 10 > STREAM_DOCUMENTS_ABOVE
        with gzip.GzipFile(fileobj=stream) as unzipped:
            yield from _read_text(name, _buffered(unzipped), streaming=streaming)  # type: ignore[arg-type]
        return
    streaming = size is None or size > STREAM_DOCUMENTS_ABOVE
    yield from _read_text(name, stream, streaming=streaming)


def _read_text(
    name: str, stream: io.BufferedReader[Any], *, streaming: bool
) -> Iterator[Record | BadInput]:
    head = stream.peek(64 * 1024)
    stripped = head.lstrip()
    if not stripped:
        return
    if _looks_like_json_lines(head):
        yield from _read_lines(name, stream)
    elif streaming and stripped[:1] == b"[":
        yield from _stream_document(name, stream, "item", "")
    elif streaming and RECORDS_BATCH.match(stripped):
        yield from _stream_document(name, stream, "Records.item", "Records")
    else:
        # Small documents, and lone records or envelopes of any size, decode in one call.
        yield from _read_document(name, stream)


def _looks_like_json_lines(head: bytes) -> bool:
    """True when the first non-empty line is a complete JSON value and more follows.

    A pretty-printed document's first line ("{") is never complete JSON on its own. When the
    first line is broken, the second decides, so one bad line does not turn a JSON Lines
    file into an unreadable document.
    """
    lines = [line for line in head.split(b"\n") if line.strip()]
    if len(lines) < 2:
        return False
    for line in lines[:2]:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        return True
    return False


def _read_lines(name: str, stream: io.BufferedReader[Any]) -> Iterator[Record | BadInput]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        origin = f"{name}:line {number}"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reason, raw = undecodable(line.rstrip(b"\r\n"), exc, "of the line")
            yield BadInput(origin, reason, raw)
            continue
        yield from _records(origin, value)


def _read_document(name: str, stream: io.BufferedReader[Any]) -> Iterator[Record | BadInput]:
    yield from decode_records(name, stream.read())


def _stream_document(
    name: str, stream: io.BufferedReader[Any], prefix: str, label: str
) -> Iterator[Record | BadInput]:
    """Element by element through a large array or Records batch, in constant memory."""
    index = -1
    try:
        for index, item in enumerate(ijson.items(stream, prefix, use_float=True)):
            yield from _records(f"{name}:{label}[{index}]", item, single=True)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        # A syntax error ends the document: nothing after it can be located reliably.
        yield BadInput(f"{name}:{label}[{index + 1}]", f"invalid JSON: {exc}", None)


def _records(origin: str, value: Any, *, single: bool = False) -> Iterator[Record | BadInput]:
    """Open envelopes and batches; positions are appended to the origin ("f.json:Records[3]")."""
    try:
        pairs = unwrap_one(value) if single else unwrap(value)
        for position, record in pairs:
            yield Record(f"{origin}:{position.lstrip('.')}" if position else origin, record)
    except ParseError as exc:
        yield BadInput(origin, exc.reason, value)


def decode_records(origin: str, data: bytes) -> Iterator[Record | BadInput]:
    """Records held by one message or object already in memory (a Kafka value, an SQS body)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason, raw = undecodable(data, exc, "")
        yield BadInput(origin, reason, raw[:4096] if isinstance(raw, str) else raw)
        return
    yield from _records(origin, document)


def undecodable(data: bytes, exc: orjson.JSONDecodeError, where: str) -> tuple[str, str | bytes]:
    """Why `data` is not JSON, and what to keep of it for the dead letter.

    orjson reports invalid UTF-8 as "surrogates not allowed" at position 0 wherever the bad
    byte is; the byte and its offset are what lets someone find it. Text that is valid UTF-8
    is kept as text; anything else is kept as the original bytes (the dead letter writes them
    as base64), since replacing the bad byte would lose exactly what went wrong.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        at = f" {where}" if where else ""
        byte = data[bad.start]
        return f"invalid UTF-8: byte 0x{byte:02x} at offset {bad.start}{at}", data
    return f"invalid JSON: {exc}", text


def read_bytes(name: str, data: bytes) -> Iterator[Record | BadInput]:
    """Records of a whole object already in memory (an S3 log file), in any shape and gzip."""
    yield from _read_stream(name, io.BufferedReader(io.BytesIO(data)), size=len(data))
