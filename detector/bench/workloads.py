"""The event streams the benchmarks run on, all made from the bundled incident's records.

* `synthetic_events`: `trailguard bench`'s own workload since it was first published: the 44
  records in turn, each given one of 2,000 access keys, so attribution, scope checks, the
  catalogue and decisions all do real work on every event.
* `mixed_events`: whole copies of the incident's sessions (agents, people, services), each
  copy with credential ids of its own, interleaved event by event: about 2,000 sessions that
  each behave as the original did, minting credentials and all.
* `own_session_events`: every event on a session of its own, the worst case for memory.

Event times advance one second every 50 events from the incident's morning, so a run of a
million events stays inside the demo scopes' validity.
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import orjson

DEMO: Final = ("data", "demo")
# The incident's credential ids all carry this account-specific part; replacing it with a
# copy number gives each copy its own keys and role ids, consistently across its records.
ID_PART: Final = b"RBCDEFGH"
MIXED_SESSIONS: Final = 2000
BASE_TIME: Final = time.mktime((2025, 12, 8, 0, 0, 0, 0, 0, 0))
EVENTS_PER_SECOND_OF_TRAIL: Final = 50


def templates() -> list[dict[str, Any]]:
    demo = importlib.resources.files("detector").joinpath(*DEMO, "incident.jsonl")
    return [orjson.loads(line) for line in demo.read_bytes().splitlines() if line.strip()]


def _stamp(index: int) -> str:
    at = time.gmtime(BASE_TIME + index // EVENTS_PER_SECOND_OF_TRAIL)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", at)


def synthetic_events(count: int, *, sessions: int = MIXED_SESSIONS) -> Iterator[bytes]:
    """`count` JSON lines: the demo records with their credentials spread over `sessions`."""
    rows = templates()
    for index in range(count):
        record = dict(rows[index % len(rows)])
        session = index % sessions
        identity = dict(record.get("userIdentity") or {})
        if identity.get("accessKeyId"):
            identity["accessKeyId"] = f"ASIABENCH{session:011d}"
        record["userIdentity"] = identity
        record["eventID"] = f"bench-{index:012d}"
        record["eventTime"] = _stamp(index)
        yield orjson.dumps(record) + b"\n"


def sessions_per_copy() -> int:
    """Distinct credential sets one copy of the incident holds (AWS services are shared)."""
    return len({credential_set(r) for r in templates() if _own_keys(r)})


def _own_keys(record: dict[str, Any]) -> bool:
    return bool((record.get("userIdentity") or {}).get("accessKeyId"))


def mixed_events(count: int, *, sessions: int = MIXED_SESSIONS) -> Iterator[bytes]:
    """`count` JSON lines from copies of the incident, interleaved, about `sessions` sessions.

    Copy `c` rewrites every credential id of the incident (access keys, role and user ids,
    minted keys in AssumeRole responses) to its own, so its chains link up as the original's
    do. Events go round the copies; once every copy has played the incident, the copies go
    on with the same sessions (fresh event ids and later times). The incident's one
    redelivered record (a retried DeleteStack) stays a duplicate in each copy.
    """
    lines = [orjson.dumps(record) for record in templates()]
    copies = max(1, round(sessions / sessions_per_copy()))
    for index in range(count):
        copy = index % copies
        step, rounds = divmod(index // copies, len(lines))[::-1]
        record = orjson.loads(lines[step].replace(ID_PART, b"%08d" % copy))
        # Derived from the original id, so the incident's redelivered record stays a
        # duplicate within its copy and round.
        record["eventID"] = f"{record['eventID']}-{copy:04d}-{rounds}"
        record["eventTime"] = _stamp(index)
        yield orjson.dumps(record) + b"\n"


def own_session_events(count: int) -> Iterator[bytes]:
    """`count` JSON lines, each from credentials no other line uses."""
    rows = [r for r in templates() if _own_keys(r)]
    for index in range(count):
        record = dict(rows[index % len(rows)])
        identity = dict(record["userIdentity"])
        identity["accessKeyId"] = f"ASIAMEM{index:013d}"
        record["userIdentity"] = identity
        record["eventID"] = f"memory-{index:012d}"
        record["eventTime"] = _stamp(index)
        yield orjson.dumps(record) + b"\n"


WORKLOADS: Final = {"bench": synthetic_events, "mixed": mixed_events}


def credential_set(record: dict[str, Any]) -> tuple[str, ...]:
    """What the session tracker keys a session on, read from the raw record."""
    identity = record.get("userIdentity") or {}
    attributes = (identity.get("sessionContext") or {}).get("attributes") or {}
    return (
        str(identity.get("accountId") or record.get("recipientAccountId") or ""),
        str(
            identity.get("principalId")
            or identity.get("arn")
            or identity.get("invokedBy")
            or identity.get("userName")
            or ""
        ),
        str(identity.get("accessKeyId") or ""),
        str(attributes.get("creationDate") or ""),
    )


def write_events(path: Path, lines: Iterable[bytes]) -> tuple[int, int, int]:
    """Write the lines; (events, bytes, distinct credential sets) of what was written."""
    events = size = 0
    seen: set[tuple[str, ...]] = set()
    with path.open("wb") as handle:
        for line in lines:
            handle.write(line)
            size += len(line)
            events += 1
            seen.add(credential_set(orjson.loads(line)))
    return events, size, len(seen)


def read_lines(path: Path) -> list[bytes]:
    """The file's lines without their newlines (message values for a topic)."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]
