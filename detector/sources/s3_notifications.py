"""What an SQS message announces, and what a downloaded log file holds (no I/O here).

S3 event notifications (direct or wrapped in SNS), EventBridge events carrying one CloudTrail
record, and the objects they name: the same readers as for local files, so every CloudTrail
shape is understood the same way whatever brought it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any

from detector.core.parse import unwrap
from detector.errors import ParseError
from detector.records import BadInput, Record
from detector.sources.files import RECORDS_BATCH, read_bytes

# CloudTrail log files live under [prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/...;
# the trailing slash keeps out CloudTrail-Digest/ and CloudTrail-Insight/.
CLOUDTRAIL_KEY = re.compile(r"(?:^|/)AWSLogs/(?:[^/]+/)*CloudTrail/")
DIGEST_MARKER = "CloudTrail-Digest"
# Objects outside the CloudTrail layout are read this far first to see if they hold Records.
SNIFF_BYTES = 64 * 1024


def decode_object(url: str, data: bytes) -> list[Record | BadInput]:
    """All items of one downloaded object; ParseError if nothing in it can be read.

    The same reader as for local files, so every CloudTrail shape is understood here too.
    """
    try:
        items = list(read_bytes(url, data))
    except (OSError, EOFError, zlib.error) as exc:
        raise ParseError(f"corrupt gzip data: {exc}", origin=url) from exc
    bad = [item for item in items if isinstance(item, BadInput)]
    if bad and len(bad) == len(items):
        raise ParseError(f"no records could be read: {bad[0].reason}", origin=url)
    return items


def holds_records(head: bytes) -> bool:
    """True if the object starts like a CloudTrail log file, compressed or not."""
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return False
    return RECORDS_BATCH.match(head.lstrip()) is not None


def is_sns(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("Type") == "Notification"
        and isinstance(document.get("Message"), str)
    )


def s3_records(document: Any) -> list[Mapping[str, Any]] | None:
    """The records of an S3 event notification, or None if the document is not one."""
    if not isinstance(document, dict):
        return None
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records):
        return records
    return None


def unwrapped(origin: str, document: Any) -> list[Record | BadInput]:
    try:
        return [
            Record(f"{origin}:{position.lstrip('.')}" if position else origin, record)
            for position, record in unwrap(document)
        ]
    except ParseError as exc:
        return [BadInput(origin, exc.reason, document)]


def dig(value: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value
