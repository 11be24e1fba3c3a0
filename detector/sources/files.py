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
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from detector.core.parse import unwrap, unwrap_one
from detector.errors import ParseError
from detector.records import BadInput, Record

# Below this size a JSON document is decoded in one call (fast); above it, streamed.
STREAM_DOCUMENTS_ABOVE = 32 * 1024 * 1024
# Suffixes picked up when walking a directory; a file named explicitly is always read.
RECORD_SUFFIXES = (".json", ".jsonl", ".ndjson", ".gz")
STDIN = "-"
RECORDS_BATCH = re.compile(rb'\{\s*"Records"\s*:')


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str
    path: Path | None  # None for stdin
    size: int


def expand(paths: Sequence[str]) -> tuple[list[InputFile], list[str]]:
    """Files to read, in a stable order, and the names skipped (digests, unknown suffixes)."""
    files: list[InputFile] = []
    skipped: list[str] = []
    for raw in paths:
        if raw == STDIN:
            files.append(InputFile(name="<stdin>", path=None, size=0))
            continue
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if wanted(child):
                    files.append(InputFile(str(child), child, child.stat().st_size))
                else:
                    skipped.append(str(child))
        elif path.is_file():
            files.append(InputFile(str(path), path, path.stat().st_size))
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")
    return files, skipped


def wanted(path: Path) -> bool:
    name = path.name
    # CloudTrail digest files sit beside log files and hold hashes, not records.
    if name.startswith(".") or "CloudTrail-Digest" in name or "CloudTrail-Digest" in str(path):
        return False
    return name.endswith(RECORD_SUFFIXES)


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
        yield from _read_stream(source.name, stream, size=source.size)


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
            yield BadInput(
                origin, f"invalid JSON: {exc}", line.decode("utf-8", "replace").rstrip("\n")
            )
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
    except ijson.JSONError as exc:
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
        yield BadInput(origin, f"invalid JSON: {exc}", data[:4096].decode("utf-8", "replace"))
        return
    yield from _records(origin, document)


def read_bytes(name: str, data: bytes) -> Iterator[Record | BadInput]:
    """Records of a whole object already in memory (an S3 log file), in any shape and gzip."""
    yield from _read_stream(name, io.BufferedReader(io.BytesIO(data)), size=len(data))
