"""The AWS CLI's services and operations, from the index built out of botocore's models.

`aws <service> <operation>` names the service by its CLI command (botocore's service name,
except the renames below) and the operation by the kebab-case form of its API name. The
index maps both back, and gives the service's endpoint prefix, from which the project's
action resolution (`detector.core.actions`) derives the IAM action exactly as it does for
CloudTrail's eventSource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

INDEX_PATH = Path(__file__).resolve().parent.parent / "data" / "gate" / "aws_cli_operations.txt"
# CLI command → botocore service, where the CLI renames a service.
CLI_RENAMES: Mapping[str, str] = {
    "s3api": "s3",  # `aws s3` is the high-level commands (detector.gate.s3_commands)
    "configservice": "config",  # `aws config` would clash with `aws configure`
    "deploy": "codedeploy",
}

# Marks an operation whose output streams to a file, named by the command's last argument.
STREAMING_MARK = ">"
_FIRST_CAP = re.compile(r"(.)([A-Z][a-z]+)")
_END_CAP = re.compile(r"([a-z0-9])([A-Z])")


def kebab(operation: str) -> str:
    """The CLI name botocore derives for most operations: DescribeStacks → describe-stacks."""
    return _END_CAP.sub(r"\1-\2", _FIRST_CAP.sub(r"\1-\2", operation)).lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOperations:
    """One CLI service: its endpoint prefix and CLI operation name → API operation name.

    outfile  CLI operations whose last positional argument is the file the output goes to
    """

    cli_name: str
    endpoint_prefix: str
    operations: Mapping[str, str]
    outfile: frozenset[str] = frozenset()

    @property
    def event_source(self) -> str:
        return f"{self.endpoint_prefix}.amazonaws.com"


def parse_line(line: str) -> ServiceOperations:
    """One index line → its service."""
    cli_name, prefix, *names = line.split()
    operations: dict[str, str] = {}
    outfile: set[str] = set()
    for field in names:
        name = field.removesuffix(STREAMING_MARK)
        cli, sep, api = name.partition("=")
        if not sep:
            cli, api = kebab(name), name
        operations[cli] = api
        if name != field:
            outfile.add(cli)
    return ServiceOperations(
        cli_name=cli_name,
        endpoint_prefix=prefix,
        operations=operations,
        outfile=frozenset(outfile),
    )


def find_service(text: str, cli_name: str) -> ServiceOperations | None:
    """The service's line in the index text, parsed; None for an unknown service."""
    if not cli_name or any(c.isspace() for c in cli_name):
        return None
    start = text.find(f"\n{cli_name} ")
    if start < 0:
        return None
    end = text.find("\n", start + 1)
    return parse_line(text[start + 1 : end if end >= 0 else len(text)])


def index_version(text: str) -> str:
    """The botocore version the index text was built from."""
    first = text.split("\n", 1)[0]
    return first.split()[2].rstrip(":") if first.startswith("# botocore ") else "unknown"


class IndexLookup:
    """Reads the shipped index once, on the first lookup, and parses only services asked for.

    The index is searched as bytes and only the service's line is decoded: decoding all of
    it (400 kB) would cost a gate start-up more than the search."""

    def __init__(self, path: Path = INDEX_PATH) -> None:
        self._path = path
        self._data: bytes | None = None
        self._cache: dict[str, ServiceOperations | None] = {}

    def __call__(self, cli_name: str) -> ServiceOperations | None:
        if cli_name not in self._cache:
            if self._data is None:
                self._data = b"\n" + self._path.read_bytes()
            self._cache[cli_name] = self._find(self._data, cli_name)
        return self._cache[cli_name]

    @staticmethod
    def _find(data: bytes, cli_name: str) -> ServiceOperations | None:
        if not cli_name or not cli_name.isascii() or any(c.isspace() for c in cli_name):
            return None
        start = data.find(b"\n" + cli_name.encode() + b" ")
        if start < 0:
            return None
        end = data.find(b"\n", start + 1)
        line = data[start + 1 : end if end >= 0 else len(data)]
        return parse_line(line.decode("utf-8"))
