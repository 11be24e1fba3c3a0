"""Is a file CloudTrail? Judged by its first bytes, never by its name.

A directory handed to `replay` or watched by the `files` source holds more than log files:
CloudTrail digests beside them, a dataset's labels and provenance, notes, archives. Reading
those as records would bury real rejections under thousands of false ones, and skipping them
by name would silently drop a `.log` file full of events. So each file's head (decompressed
when it is gzip) is looked at, and a file is skipped only when it is clearly not CloudTrail:
empty, binary, not JSON at all, a digest, or JSON in which no CloudTrail field appears.
Anything else is read, and what is wrong with it is rejected record by record.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# Enough for the first records of any CloudTrail shape; a record is rarely larger.
SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# Field names every CloudTrail shape carries near its start: a record, an S3 log file, an
# EventBridge envelope. `eventID` alone is not enough: a labels file keyed by eventID is not
# CloudTrail.
CLOUDTRAIL_FIELD = re.compile(
    rb'"(?:eventVersion|eventSource|eventName|userIdentity|Records|detail-type)"\s*:'
)
DIGEST_FIELD = re.compile(rb'"(?:digestPublicKeyFingerprint|digestSignatureAlgorithm)"\s*:')
_TEXT_CONTROL = bytes(range(9)) + bytes(range(14, 32))


class SkipReason(StrEnum):
    """Why a file was not read: a bounded set, used as a metric label and in summaries."""

    EMPTY = "empty"
    BINARY = "binary"
    NOT_JSON = "not-json"
    NOT_CLOUDTRAIL = "not-cloudtrail"
    DIGEST = "digest"
    HIDDEN = "hidden"
    SPECIAL_FILE = "special-file"  # a FIFO, socket or device: nothing to read to the end


SKIP_DESCRIPTIONS = {
    SkipReason.EMPTY: "empty",
    SkipReason.BINARY: "binary, not text",
    SkipReason.NOT_JSON: "text that is not JSON",
    SkipReason.NOT_CLOUDTRAIL: "JSON without CloudTrail fields",
    SkipReason.DIGEST: "CloudTrail digest (hashes, no events)",
    SkipReason.HIDDEN: "hidden file",
    SkipReason.SPECIAL_FILE: "not a regular file",
}


@dataclass(frozen=True, slots=True)
class Skip:
    """A file that was not read, and why."""

    name: str
    reason: SkipReason

    @property
    def description(self) -> str:
        return SKIP_DESCRIPTIONS[self.reason]


def is_digest_name(path: Path) -> bool:
    """CloudTrail writes digests under `CloudTrail-Digest/`, with that word in the name."""
    return "CloudTrail-Digest" in path.as_posix()


def is_hidden(path: Path, root: Path | None = None) -> bool:
    """A dot file, or a file inside a dot directory below `root` (`.git`, `.cache`)."""
    parts = path.relative_to(root).parts if root is not None else (path.name,)
    return any(part.startswith(".") for part in parts)


def judge(head: bytes) -> SkipReason | None:
    """None when `head` (a file's first bytes, decompressed) may hold CloudTrail records."""
    if not head.strip():
        return SkipReason.EMPTY
    sample = head[:4096]
    if b"\x00" in sample or len(sample.translate(None, _TEXT_CONTROL)) < len(sample) * 0.9:
        return SkipReason.BINARY
    if DIGEST_FIELD.search(head):
        return SkipReason.DIGEST
    # JSON (a document or JSON Lines) has a line starting with { or [ within its head; one
    # broken first line does not make a JSON Lines file "not JSON".
    starts = (line.lstrip(b" \t\r\xef\xbb\xbf")[:1] for line in head.split(b"\n")[:20])
    if not any(start in (b"{", b"[") for start in starts):
        return SkipReason.NOT_JSON
    if not CLOUDTRAIL_FIELD.search(head):
        return SkipReason.NOT_CLOUDTRAIL
    return None


def head_of(data: bytes) -> bytes | None:
    """The first SNIFF_BYTES of content, gunzipped if need be; None when gzip cannot even start
    to decompress (the reader then reports the file as corrupt)."""
    if data[:2] != GZIP_MAGIC:
        return data[:SNIFF_BYTES]
    try:
        return zlib.decompressobj(wbits=31).decompress(data, SNIFF_BYTES)
    except zlib.error:
        return None


def screen(path: Path) -> SkipReason | None:
    """Why `path` (a regular file) is skipped, or None to read it.

    A file that cannot be opened or whose gzip is corrupt is read anyway, so the reader
    reports the error with the file's name and the file is dead-lettered, not skipped.
    """
    if is_digest_name(path):
        return SkipReason.DIGEST
    try:
        with path.open("rb") as handle:
            # Compressed CloudTrail is about 10:1; this much gunzips to a full head.
            data = handle.read(SNIFF_BYTES)
    except OSError:
        return None
    head = head_of(data)
    if head is None:
        return None
    return judge(head)
