"""The high-level `aws s3` commands as IAM actions on buckets and keys.

These commands are the CLI's own, not API operations, so botocore's models do not name
them; each one is a handful of API calls, whose IAM actions are:

| command                   | actions                                                       |
|---------------------------|---------------------------------------------------------------|
| ls                        | s3:ListAllMyBuckets                                           |
| ls s3://b[/prefix]        | s3:ListBucket on b                                            |
| cp local s3://b/k         | s3:PutObject on b/k                                           |
| cp s3://b/k local         | s3:GetObject on b/k                                           |
| cp s3://a/k s3://b/k      | s3:GetObject on a/k, s3:PutObject on b/k                      |
| mv                        | as cp, plus s3:DeleteObject on an s3:// source                |
| rm s3://b/k               | s3:DeleteObject on b/k                                        |
| sync                      | as cp --recursive                                             |
| sync --delete             | plus s3:DeleteObject on the destination                       |
| mb s3://b                 | s3:CreateBucket on b                                          |
| rb s3://b                 | s3:DeleteBucket on b                                          |
| rb --force                | plus s3:ListBucket on b, s3:DeleteObject on b/*               |
| presign s3://b/k          | s3:GetObject on b/k (the URL it signs grants that)            |
| website s3://b            | s3:PutBucketWebsite on b                                      |

`--recursive` (and every sync) also lists each s3:// side (s3:ListBucket on its bucket) and
acts on every key under the prefix, written `b/prefix*` as the resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

S3_COMMANDS = frozenset({"ls", "cp", "mv", "rm", "sync", "mb", "rb", "presign", "website"})
# Options of the s3 commands that take no value; every other option takes one.
S3_FLAGS = frozenset({"--recursive", "--delete", "--force", "--dryrun", "--quiet",
                      "--exact-timestamps", "--size-only", "--follow-symlinks",
                      "--no-follow-symlinks", "--no-progress", "--only-show-errors",
                      "--human-readable", "--summarize", "--no-guess-mime-type",
                      "--ignore-glacier-warnings", "--force-glacier-transfer",
                      "--request-payer", "--bypass-governance-retention",
                      "--checksum-mode"})  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Plan:
    """The IAM actions and resource ARNs of one high-level s3 command."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


def _split(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _bucket(partition: str, uri: str) -> str:
    parts = _split(uri)
    return f"arn:{partition}:s3:::{parts[0] if parts else ''}"


def _objects(partition: str, uri: str, *, many: bool) -> str:
    parts = _split(uri)
    bucket, key = parts if parts else ("", "")
    return f"arn:{partition}:s3:::{bucket}/{key}{'*' if many else ''}"


def plan(
    command: str, paths: Sequence[str], flags: frozenset[str], *, partition: str = "aws"
) -> S3Plan | None:
    """The plan of `aws s3 <command> <paths...> <flags>`; None for an unknown command."""
    if command not in S3_COMMANDS:
        return None
    actions: list[str] = []
    resources: list[str] = []
    remote = [p for p in paths if p.startswith("s3://")]

    def add(action: str, resource: str | None = None) -> None:
        if action not in actions:
            actions.append(action)
        if resource is not None and resource not in resources:
            resources.append(resource)

    many = "--recursive" in flags or command == "sync"
    if command == "ls":
        if not remote:
            add("s3:ListAllMyBuckets")
        for uri in remote:
            add("s3:ListBucket", _bucket(partition, uri))
    elif command in ("cp", "mv", "sync"):
        source, target = (paths[0], paths[1]) if len(paths) >= 2 else ("", "")
        if many:
            for uri in (source, target):
                if uri.startswith("s3://"):
                    add("s3:ListBucket", _bucket(partition, uri))
        if source.startswith("s3://"):
            add("s3:GetObject", _objects(partition, source, many=many))
        if target.startswith("s3://"):
            add("s3:PutObject", _objects(partition, target, many=many))
        if command == "mv" and source.startswith("s3://"):
            add("s3:DeleteObject", _objects(partition, source, many=many))
        if command == "sync" and "--delete" in flags and target.startswith("s3://"):
            add("s3:DeleteObject", _objects(partition, target, many=True))
    elif command == "rm":
        for uri in remote:
            if many:
                add("s3:ListBucket", _bucket(partition, uri))
            add("s3:DeleteObject", _objects(partition, uri, many=many))
    elif command == "mb":
        for uri in remote:
            add("s3:CreateBucket", _bucket(partition, uri))
    elif command == "rb":
        for uri in remote:
            if "--force" in flags:
                add("s3:ListBucket", _bucket(partition, uri))
                add("s3:DeleteObject", _objects(partition, uri, many=True))
            add("s3:DeleteBucket", _bucket(partition, uri))
    elif command == "presign":
        for uri in remote:
            add("s3:GetObject", _objects(partition, uri, many=False))
    elif command == "website":
        for uri in remote:
            add("s3:PutBucketWebsite", _bucket(partition, uri))
    return S3Plan(actions=tuple(actions), resources=tuple(resources))
