"""Where training history is read from: files, directories and `s3://bucket/prefix`.

Local paths are expanded and screened exactly as `trailguard replay` does. An S3 prefix is
listed through boto3 (in key order, which is time order within a region's CloudTrail
folder); digest files are left out, and with --since/--until the objects whose key date
(CloudTrail's `/YYYY/MM/DD/` folders) lies well outside the window are never fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from detector.errors import ConfigError, DetectorError
from detector.records import BadInput, Record
from detector.sources.files import InputFile, expand, read_bytes, read_input
from detector.sources.screen import Skip

S3_SCHEME = "s3://"
KEY_DATE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
DIGEST_FOLDER = "/CloudTrail-Digest/"


class TrainingInputError(DetectorError):
    """Training history could not be listed or read (a bucket that does not exist, no
    permission, no credentials). Retriable when the endpoint could not be reached."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    size: int

    @property
    def name(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"


Input = InputFile | S3Object


@dataclass(frozen=True, slots=True)
class Plan:
    """What will be read, in order, and what was skipped (with the reason)."""

    inputs: tuple[Input, ...]
    skipped: tuple[Skip, ...]

    @property
    def size(self) -> int:
        return sum(i.size for i in self.inputs)


def plan(
    paths: Sequence[str],
    *,
    s3_client: Callable[[], Any],
    since: datetime | None = None,
    until: datetime | None = None,
) -> Plan:
    """Expand every path; `s3_client` makes the boto3 client, only when an S3 path is given."""
    inputs: list[Input] = []
    skipped: list[Skip] = []
    client = None
    for path in paths:
        if path.startswith(S3_SCHEME):
            client = client or s3_client()
            inputs.extend(_list_s3(client, path, since, until))
            continue
        files, skips = expand([path])
        inputs.extend(files)
        skipped.extend(skips)
    return Plan(tuple(inputs), tuple(skipped))


def s3_clients(endpoint_url: str | None = None) -> Callable[[], Any]:
    """Makes one boto3 S3 client on first use (never when no S3 path is read)."""
    made: list[Any] = []

    def client() -> Any:
        if not made:
            import boto3  # type: ignore[import-untyped]

            made.append(boto3.client("s3", endpoint_url=endpoint_url))
        return made[0]

    return client


def read(
    item: Input, *, s3_client: Callable[[], Any], progress: Callable[[int], None] | None = None
) -> Iterator[Record | BadInput]:
    """The records of one input, with a BadInput for what cannot be decoded."""
    if isinstance(item, InputFile):
        yield from read_input(item, progress=progress)
        return
    data = _get(s3_client(), item)
    if progress is not None:
        progress(item.size)
    yield from read_bytes(item.name, data)


def split_s3(url: str) -> tuple[str, str]:
    rest = url[len(S3_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{url}: an S3 path is s3://bucket or s3://bucket/prefix")
    return bucket, prefix


def _list_s3(
    client: Any, url: str, since: datetime | None, until: datetime | None
) -> Iterator[S3Object]:
    bucket, prefix = split_s3(url)
    objects: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = str(item["Key"])
                if key.endswith("/") or DIGEST_FOLDER in f"/{key}":
                    continue
                if not _in_window(key, since, until):
                    continue
                objects.append(S3Object(bucket, key, int(item.get("Size", 0))))
    except (BotoCoreError, ClientError) as exc:
        raise _error(f"cannot list {url}", exc) from None
    return iter(sorted(objects, key=lambda o: o.key))


def _get(client: Any, item: S3Object) -> bytes:
    try:
        body = client.get_object(Bucket=item.bucket, Key=item.key)["Body"]
        data: bytes = body.read()
    except (BotoCoreError, ClientError) as exc:
        raise _error(f"cannot read {item.name}", exc) from None
    return data


def _error(what: str, exc: Exception) -> TrainingInputError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return TrainingInputError(f"{what}: {error.get('Code')}: {error.get('Message')}")
    if isinstance(exc, NoCredentialsError):
        return TrainingInputError(f"{what}: no AWS credentials found")
    if isinstance(exc, EndpointConnectionError):
        return TrainingInputError(f"{what}: {exc}", retriable=True)
    return TrainingInputError(f"{what}: {exc}")


def _in_window(key: str, since: datetime | None, until: datetime | None) -> bool:
    """False only for a key dated (by its folder) more than a day outside the window: a
    file's events can start before the hour it is filed under and end after it."""
    found = KEY_DATE.search(f"/{key}")
    if found is None:
        return True
    try:
        day = date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return True
    if since is not None and day < since.date() - timedelta(days=1):
        return False
    return not (until is not None and day > until.date() + timedelta(days=1))
