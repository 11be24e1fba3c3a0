"""The incident scenario inside ordinary traffic, for the service and Kafka tests.

Background: the AWS-service and console/SDK events of the Invictus capture (no attack, no
Terraform), repeated with fresh event ids, access keys and times, interleaved with the bundled
incident by event time. Deterministic, so a run and a replay see the same input.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tests.conftest import CLOUDTRAIL, read_jsonl

if TYPE_CHECKING:
    from detector.service import Service

DEMO = Path(__file__).resolve().parents[1] / "detector" / "data" / "demo"
BACKGROUND_CLASSES = frozenset({"aws_service_or_internal", "other_console_cli_sdk"})
START = datetime(2025, 12, 8, 9, 0, tzinfo=UTC)


def incident() -> list[dict[str, Any]]:
    return list(read_jsonl(DEMO / "incident.jsonl"))


def background(count: int) -> list[dict[str, Any]]:
    folder = CLOUDTRAIL / "invictus_aws_dataset"
    labels = {row["eventID"]: row["activity_class"] for row in read_jsonl(folder / "labels.jsonl")}
    templates = [
        record
        for record in read_jsonl(folder / "events.jsonl")
        if labels.get(record["eventID"]) in BACKGROUND_CLASSES
    ]
    records = []
    step = timedelta(hours=2) / count
    for index in range(count):
        record = copy.deepcopy(templates[index % len(templates)])
        cycle = index // len(templates)
        record["eventID"] = f"bg-{index:07d}"
        record["eventTime"] = (START + step * index).strftime("%Y-%m-%dT%H:%M:%SZ")
        identity = record.get("userIdentity") or {}
        key = identity.get("accessKeyId")
        if key:
            # Each repetition is a new credential set, so sessions do not run for ever.
            identity["accessKeyId"] = f"{key[:4]}BG{cycle:04d}{key[10:]}"[: len(key)]
        records.append(record)
    return records


def scenario(background_count: int = 10_000) -> list[dict[str, Any]]:
    """Incident plus background, sorted by event time (stable, so ties keep their order)."""
    return sorted(incident() + background(background_count), key=lambda r: r["eventTime"])


def as_jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def read_output(path: Path) -> list[dict[str, Any]]:
    """The contract records a sink wrote to `path` ([] before it exists)."""
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def run_until_written(
    service: Service, out: Path, count: int, *, wait_seconds: float = 30.0
) -> None:
    """Run the service until its sink has written `count` records to `out`, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while len(read_output(out)) < count:
        assert not task.done(), "the service ended early"
        assert asyncio.get_running_loop().time() < deadline, f"{len(read_output(out))} written"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, wait_seconds)


def canonical(records: list[dict[str, Any]]) -> list[bytes]:
    """Records in a fixed order, for comparing outputs whose interleaving may differ."""
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)
