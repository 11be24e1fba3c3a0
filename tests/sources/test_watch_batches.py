"""A large watched file is handed over as bounded batches, and its position advances only
over what was settled: ack order, nacks of a middle batch, lost batches, read errors after
some batches, restarts part-way and files that change while they are read.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.errors import ConfigError
from detector.records import BadInput
from detector.sources.base import Batch
from detector.sources.files import InputFile, UnreadableFile, read_input
from detector.sources.polling import REDELIVERIES
from detector.sources.watch import WatchSource
from detector.testing.conformance import MemoryCheckpoints
from tests.sources.test_watch import IDS, ids, jsonl, make_source, scan, started


def entry(store: MemoryCheckpoints, name: str = "a.jsonl") -> list[int] | None:
    value: dict[str, list[int]] = orjson.loads(store.values.get("files:drop", "{}"))
    return value.get(name)


def stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


async def watched_in_pairs(
    tmp_path: Path, *numbers: int
) -> tuple[MemoryCheckpoints, Path, WatchSource]:
    """`a.jsonl` holding the events `numbers`, watched by a started source that hands it over
    two records at a time and keeps its position in the returned store."""
    store = MemoryCheckpoints()
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(*numbers))
    return store, path, await started(make_source(tmp_path, store=store, batch_records=2))


async def batches_of(source: WatchSource) -> AsyncIterator[Batch]:
    async for batch in source.scan():
        yield batch


async def test_a_file_is_handed_over_in_batches_of_batch_records(tmp_path: Path) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4)

    first, second, third = await scan(source)

    assert [ids(b) for b in (first, second, third)] == [IDS[0:2], IDS[2:4], IDS[4:5]]
    assert [item.origin for item in third.items] == [f"{path}:line 5"]
    assert await scan(source) == []  # handed out, not settled: not read again
    await first.ack()
    assert entry(store) == [*stamp(path), 2]  # part-way: the position is saved
    await second.ack()
    assert entry(store) == [*stamp(path), 4]
    await third.ack()
    assert entry(store) == stamp(path)  # done
    assert await scan(source) == []


async def test_the_position_passes_only_what_was_settled_in_file_order(tmp_path: Path) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    first, second, third = await scan(source)

    await third.ack()
    await second.ack()
    assert entry(store) is None  # the first batch still holds the position at 0
    await first.ack()
    assert entry(store) == stamp(path)


async def test_a_nacked_middle_batch_comes_again_alone_and_the_file_waits_for_it(
    tmp_path: Path,
) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    first, second, third = await scan(source)
    await first.ack()
    await second.nack(RuntimeError("sink down"))
    await third.ack()
    assert entry(store) == [*stamp(path), 2]

    [again] = await scan(source)
    assert ids(again) == IDS[2:4]
    await again.ack()
    assert entry(store) == stamp(path)
    assert await scan(source) == []


async def test_a_batch_nacked_while_the_file_is_read_comes_before_the_rest(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(0, 1, 2, 3, 4, 5))
    source = await started(make_source(tmp_path, batch_records=2))
    stream = batches_of(source)
    first = await anext(stream)
    await first.nack(RuntimeError("sink down"))
    order = [ids(first)] + [ids(b) async for b in stream]
    assert order == [IDS[0:2], IDS[0:2], IDS[2:4], IDS[4:6]]


async def test_a_middle_batch_failing_every_time_is_dead_lettered_and_the_file_done(
    tmp_path: Path,
) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    first, middle, last = await scan(source)
    await first.ack()
    await last.ack()
    for _ in range(REDELIVERIES + 1):
        await middle.nack(RuntimeError("sink down"))
        [middle] = await scan(source)
    assert all(isinstance(item, BadInput) for item in middle.items)
    assert [item.origin for item in middle.items] == [f"{path}:line 3", f"{path}:line 4"]
    await middle.ack()
    assert entry(store) == stamp(path)


async def test_a_lost_batch_holds_the_position_before_it_and_a_restart_reads_on_from_there(
    tmp_path: Path,
) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    first, middle, last = await scan(source)
    await first.ack()
    await last.ack()
    for _ in range(REDELIVERIES + 2):  # the last time, not even dead-lettering worked
        await middle.nack(RuntimeError("disk full"))
        middle_again = await scan(source)
        if not middle_again:
            break
        [middle] = middle_again
    assert await scan(source) == []  # given up on until it changes
    assert entry(store) == [*stamp(path), 2]

    after = await started(make_source(tmp_path, store=store, batch_records=2))
    resumed = await scan(after)
    assert [ids(b) for b in resumed] == [IDS[2:4], IDS[4:6]]


async def test_a_restart_part_way_goes_on_from_the_position(tmp_path: Path) -> None:
    store, path, before = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    stream = batches_of(before)
    first = await anext(stream)
    second = await anext(stream)
    await first.ack()
    await before.stop()  # the process dies with the second batch in hand
    assert ids(second) == IDS[2:4]

    after = await started(make_source(tmp_path, store=store, batch_records=2))
    resumed = await scan(after)
    assert [ids(b) for b in resumed] == [IDS[2:4], IDS[4:6]]
    assert resumed[0].items[0].origin == f"{path}:line 3"
    for batch in resumed:
        await batch.ack()
    assert entry(store) == stamp(path)


async def test_stopping_part_way_leaves_the_rest_unread_and_saves_what_was_acked(
    tmp_path: Path,
) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    stream = batches_of(source)
    first = await anext(stream)
    await source.stop()
    assert [ids(b) async for b in stream] == []
    await first.ack()  # the service's final flush
    assert entry(store) == [*stamp(path), 2]


async def test_a_position_saved_for_other_content_is_ignored(tmp_path: Path) -> None:
    store = MemoryCheckpoints()
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(0, 1, 2, 3))
    size, mtime = stamp(path)
    store.values["files:drop"] = orjson.dumps({"a.jsonl": [size, mtime - 1, 2]}).decode()
    source = await started(make_source(tmp_path, store=store, batch_records=2))
    assert [ids(b) for b in await scan(source)] == [IDS[0:2], IDS[2:4]]


async def test_a_truncated_gzip_after_some_batches_keeps_every_record_once(
    tmp_path: Path,
) -> None:
    store = MemoryCheckpoints()
    path = tmp_path / "cut.json.gz"
    whole = gzip.compress(jsonl(0, 1, 2, 3, 4, 5) * 200)
    path.write_bytes(whole[: len(whole) // 2])
    readable = list(read_input(InputFile(str(path), path, path.stat().st_size)))
    assert isinstance(readable[-1], UnreadableFile)
    source = await started(make_source(tmp_path, store=store, batch_records=100))

    batches = await scan(source)

    assert len(batches) > 3
    assert all(len(b.items) <= 100 for b in batches)
    items = [item for batch in batches for item in batch.items]
    assert [i.origin for i in items] == [i.origin for i in readable]
    unreadable = [i for i in items if isinstance(i, UnreadableFile)]
    assert unreadable == [items[-1]]
    assert unreadable[0].reason.startswith("cannot read the file: truncated gzip")
    for batch in batches[:-1]:
        await batch.ack()
    assert entry(store, "cut.json.gz") == [*stamp(path), len(items) - len(batches[-1].items)]
    await batches[-1].ack()
    assert entry(store, "cut.json.gz") == stamp(path)


async def test_rejections_reach_the_dead_letter_once_each_and_in_file_order(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(jsonl(0, 1, 2, 3, 4, 5))
    store = MemoryCheckpoints()
    dead = tmp_path / "dead"
    dead.mkdir()
    letter = dead / "a.jsonl.rejected.jsonl"

    def reject(batch: Batch) -> None:
        # What the service does with each record it rejects.
        assert batch.dead_letter is not None
        for item in batch.items:
            batch.dead_letter.add(origin=item.origin, error="rejected", raw=None)

    def origins() -> list[str]:
        lines = letter.read_bytes().splitlines() if letter.exists() else []
        return [str(orjson.loads(line)["origin"]).rsplit(":", 1)[-1] for line in lines]

    settings: dict[str, Any] = {"batch_records": 2, "dead_letter": str(dead)}
    source = await started(make_source(inbox, store=store, **settings))
    first, second, third = await scan(source)
    for batch in (first, second, third):
        reject(batch)
    await second.nack(RuntimeError("sink down"))  # its rejections are not kept
    await third.ack()
    assert origins() == []  # held back: the first batch is not settled yet
    await first.ack()
    assert origins() == ["line 1", "line 2"]
    [again] = await scan(source)
    reject(again)
    await again.ack()
    assert origins() == [f"line {n}" for n in range(1, 7)]

    # A restart part-way keeps what the earlier part dead-lettered.
    (inbox / "b.jsonl").write_bytes(jsonl(0, 1, 2, 3))
    b_letter = dead / "b.jsonl.rejected.jsonl"
    before = await started(make_source(inbox, store=store, **settings))
    stream = batches_of(before)
    b_first = await anext(stream)
    reject(b_first)
    await b_first.ack()
    await before.stop()
    after = await started(make_source(inbox, store=store, **settings))
    [b_rest] = await scan(after)
    reject(b_rest)
    await b_rest.ack()
    b_lines = b_letter.read_bytes().splitlines()
    assert [str(orjson.loads(line)["origin"]).rsplit(":", 1)[-1] for line in b_lines] == [
        f"line {n}" for n in range(1, 5)
    ]


async def test_a_file_that_changes_part_way_is_read_again_from_its_start(tmp_path: Path) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3, 4, 5)
    stream = batches_of(source)
    first = await anext(stream)
    path.write_bytes(jsonl(0, 1, 2, 3, 4, 5) + jsonl(0))  # rewritten: a new file
    assert [ids(b) async for b in stream] == []
    await first.ack()
    assert entry(store) != stamp(path)  # the position saved is for the old content

    again = await scan(source)
    assert [ids(b) for b in again] == [IDS[0:2], IDS[2:4], IDS[4:6], IDS[0:1]]
    for batch in again:
        await batch.ack()
    assert entry(store) == stamp(path)


async def test_a_file_of_exactly_batch_records_items_is_done_after_its_last_batch(
    tmp_path: Path,
) -> None:
    store, path, source = await watched_in_pairs(tmp_path, 0, 1, 2, 3)
    first, second = await scan(source)
    await second.ack()
    await first.ack()
    assert entry(store) == stamp(path)


def test_batch_records_defaults_to_5000(tmp_path: Path) -> None:
    assert WatchSource("drop", {"path": str(tmp_path)}).batch_records == 5000


@pytest.mark.parametrize("value", [0, -1, "many", 2.5])
def test_batch_records_must_be_a_positive_integer(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=r"sources\.drop\.batch_records\b"):
        WatchSource("drop", {"path": str(tmp_path), "batch_records": value})
