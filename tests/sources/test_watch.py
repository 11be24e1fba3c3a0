"""The watched-directory source: settling, every input shape, checkpoints and restarts.

Time is driven through an injected clock, so nothing here sleeps.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.errors import ConfigError, StateError
from detector.records import BadInput, Record
from detector.sources.base import SOURCES, Batch
from detector.sources.polling import REDELIVERIES
from detector.sources.watch import WatchSource
from detector.testing.conformance import MemoryCheckpoints
from tests.conftest import CLOUDTRAIL

LINES = (
    (CLOUDTRAIL / "stratus_detonation_logs" / "events.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()[:6]
)
RECORDS = [orjson.loads(line) for line in LINES]
IDS = [str(record["eventID"]) for record in RECORDS]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    return None


def make_source(
    folder: Path,
    *,
    store: MemoryCheckpoints | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> WatchSource:
    source = WatchSource(
        "drop",
        {"path": str(folder), "settle_seconds": 0, **settings},
        clock=clock or Clock(),
        sleep=no_sleep,
    )
    if store is not None:
        source.attach(store)
    return source


async def started(source: WatchSource) -> WatchSource:
    await source.start()
    return source


async def scan(source: WatchSource) -> list[Batch]:
    return [batch async for batch in source.scan()]


def ids(batch: Batch) -> list[str]:
    return [item.value["eventID"] for item in batch.items if isinstance(item, Record)]


def jsonl(*indexes: int) -> bytes:
    return b"".join(LINES[i].encode() + b"\n" for i in indexes)


def envelope(index: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"eb-{index}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sts",
        "detail": RECORDS[index],
    }


def done(store: MemoryCheckpoints) -> dict[str, list[int]]:
    value: dict[str, list[int]] = orjson.loads(store.values["files:drop"])
    return value


async def test_a_new_file_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(0, 1))
    source = await started(make_source(tmp_path))
    assert not source.ready

    [batch] = await scan(source)

    assert source.ready
    assert ids(batch) == IDS[:2]
    assert [item.origin for item in batch.items] == [f"{path}:line 1", f"{path}:line 2"]
    assert await scan(source) == []  # delivered, not yet acked: not read twice
    await batch.ack()
    assert await scan(source) == []


async def test_a_file_is_read_only_after_it_stops_changing(tmp_path: Path) -> None:
    clock = Clock()
    source = await started(make_source(tmp_path, clock=clock, settle_seconds=2))
    document = orjson.dumps({"Records": RECORDS[:3]})
    path = tmp_path / "log.json"
    path.write_bytes(document[: len(document) // 2])  # the writer is half-way
    assert await scan(source) == []

    clock.now += 1
    path.write_bytes(document)  # finished writing: size changed, the wait starts over
    assert await scan(source) == []

    clock.now += 1.5
    assert await scan(source) == []

    clock.now += 0.5
    [batch] = await scan(source)
    assert ids(batch) == IDS[:3]
    assert not any(isinstance(item, BadInput) for item in batch.items)


async def test_every_shape_replay_reads(tmp_path: Path) -> None:
    nested = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1"
    nested.mkdir(parents=True)
    gz = nested / "111122223333_CloudTrail_us-east-1_20240730T2130Z_a.json.gz"
    gz.write_bytes(gzip.compress(orjson.dumps({"Records": RECORDS[:2]})))
    digest = nested / "111122223333_CloudTrail-Digest_us-east-1_20240730T2130Z.json.gz"
    digest.write_bytes(gzip.compress(b'{"digestStartTime": "x"}'))
    (tmp_path / "eventbridge.json").write_bytes(orjson.dumps(envelope(2)))
    (tmp_path / "eventbridge-array.json").write_bytes(orjson.dumps([envelope(3), envelope(4)]))
    (tmp_path / "lines.ndjson").write_bytes(jsonl(5))
    (tmp_path / "notes.txt").write_text("not records")
    (tmp_path / ".upload.json").write_bytes(jsonl(0))  # hidden: a file still being uploaded
    base = os.stat(gz).st_mtime_ns
    for offset, name in enumerate(["eventbridge.json", "eventbridge-array.json", "lines.ndjson"]):
        os.utime(tmp_path / name, ns=(base + offset + 1, base + offset + 1))
    source = await started(make_source(tmp_path))

    batches = await scan(source)

    assert [ids(batch) for batch in batches] == [IDS[0:2], IDS[2:3], IDS[3:5], IDS[5:6]]
    assert [item.origin for item in batches[0].items] == [
        f"{gz}:Records[0]",
        f"{gz}:Records[1]",
    ]
    assert batches[1].items[0].origin == f"{tmp_path / 'eventbridge.json'}:detail"
    assert batches[2].items[1].origin == f"{tmp_path / 'eventbridge-array.json'}:[1].detail"


async def test_pattern_limits_the_files_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "top.json.gz").write_bytes(gzip.compress(jsonl(0, 1)))
    (tmp_path / "sub" / "deep.json.gz").write_bytes(gzip.compress(jsonl(2, 3)))
    (tmp_path / "top.jsonl").write_bytes(jsonl(4, 5))
    source = await started(make_source(tmp_path, pattern="*.json.gz"))

    [batch] = await scan(source)

    assert ids(batch) == IDS[:2]


async def test_checkpoint_is_saved_on_ack_and_holds_only_present_files(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    first = tmp_path / "a.jsonl"
    first.write_bytes(jsonl(0, 1))
    source = await started(make_source(tmp_path, store=store))
    [batch] = await scan(source)
    assert store.values == {}

    await batch.ack()
    info = first.stat()
    assert done(store) == {"a.jsonl": [info.st_size, info.st_mtime_ns]}

    first.unlink()
    (tmp_path / "b.jsonl").write_bytes(jsonl(2))
    [batch] = await scan(source)
    await batch.ack()
    assert list(done(store)) == ["b.jsonl"]


async def test_a_restart_skips_done_files_and_reads_rewritten_ones(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    (tmp_path / "a.jsonl").write_bytes(jsonl(0, 1))
    (tmp_path / "b.jsonl").write_bytes(jsonl(2, 3))
    before = await started(make_source(tmp_path, store=store))
    first, second = await scan(before)
    await first.ack()  # b was delivered but never processed
    await before.stop()

    after = await started(make_source(tmp_path, store=store))
    [again] = await scan(after)
    assert ids(again) == ids(second)
    await again.ack()
    assert await scan(after) == []

    # Same size, new modification time: the file was rewritten and is read again.
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(1, 0))
    mtime = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(mtime, mtime))
    [rewritten] = await scan(after)
    assert ids(rewritten) == [IDS[1], IDS[0]]


async def test_delete_after_removes_the_file_on_ack(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(0))
    source = await started(make_source(tmp_path, store=store, delete_after=True))
    [batch] = await scan(source)
    assert path.exists()

    await batch.ack()

    assert not path.exists()
    assert done(store) == {}


async def test_a_bad_record_becomes_bad_input_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(LINES[0].encode() + b"\n" + LINES[1][:50].encode() + b"\n" + jsonl(2))
    source = await started(make_source(tmp_path))

    [batch] = await scan(source)

    good, bad, last = batch.items
    assert isinstance(good, Record) and isinstance(last, Record)
    assert isinstance(bad, BadInput)
    assert bad.origin == f"{path}:line 2"
    assert bad.reason.startswith("invalid JSON")


async def test_a_truncated_gzip_keeps_what_was_read_and_reports_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cut.json.gz"
    whole = gzip.compress(jsonl(0, 1, 2, 3, 4, 5) * 200)
    path.write_bytes(whole[: len(whole) // 2])
    source = await started(make_source(tmp_path))

    [batch] = await scan(source)

    assert isinstance(batch.items[0], Record)
    last = batch.items[-1]
    assert isinstance(last, BadInput)
    assert last.origin == str(path)
    assert last.reason.startswith("cannot read the file")


async def test_a_nacked_file_is_delivered_again_then_dead_lettered(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    (tmp_path / "a.jsonl").write_bytes(jsonl(0))
    source = await started(make_source(tmp_path, store=store))
    [batch] = await scan(source)
    for _ in range(REDELIVERIES):
        await batch.nack(RuntimeError("sink down"))
        [batch] = await scan(source)
        assert ids(batch) == IDS[:1]
    await batch.nack(RuntimeError("sink down"))
    [dead] = await scan(source)
    assert [type(item) for item in dead.items] == [BadInput]
    assert store.values == {}
    await dead.ack()
    assert list(done(store)) == ["a.jsonl"]


async def test_batches_runs_until_stop(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(0))
    source = await started(make_source(tmp_path))
    delivered = []
    async for batch in source.batches():
        delivered.append(ids(batch))
        await batch.ack()
        await source.stop()
    assert delivered == [IDS[:1]]


async def test_start_needs_an_existing_directory(tmp_path: Path) -> None:
    folder = tmp_path / "removed-after-config-check"
    folder.mkdir()
    source = make_source(folder)
    folder.rmdir()
    with pytest.raises(ConfigError, match=r"sources\.drop\.path"):
        await source.start()


async def test_a_corrupt_checkpoint_is_a_state_error(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    store.values["files:drop"] = '{"a.jsonl": "yesterday"}'
    source = make_source(tmp_path, store=store)
    with pytest.raises(StateError, match="files:drop"):
        await source.start()


def test_registered_as_files() -> None:
    assert SOURCES.get("files") is WatchSource


def test_defaults(tmp_path: Path) -> None:
    source = WatchSource("drop", {"type": "files", "name": "drop", "path": str(tmp_path)})
    assert source.pattern == "**/*"
    assert source.poll_interval == 5
    assert source.settle == 2
    assert source.delete_after is False


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "path"),
        ({"path": ""}, "path"),
        ({"path": "/in", "pattern": "/abs/*.json"}, "pattern"),
        ({"path": "/in", "pattern": "../*.json"}, "pattern"),
        ({"path": "/in", "pattern": "logs**/*.json"}, "pattern"),
        ({"path": "/in", "poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"path": "/in", "settle_seconds": -1}, "settle_seconds"),
        ({"path": "/in", "delete_after": "yes"}, "delete_after"),
        ({"path": "/in", "delete": True}, "delete"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"sources\.drop\.{key}\b"):
        WatchSource("drop", settings)
