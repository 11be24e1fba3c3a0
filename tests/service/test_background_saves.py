"""Batches go on while a flush's cut is saved; its batches are acknowledged only once stored.

The real SQLite store and JSONL sink. The store's save is held in its worker thread by a
gate the test opens, so what happens meanwhile can be watched; failures are staged by
raising where the real store would have written.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings, StateSettings
from detector.core.parse import parse_record
from detector.errors import DetectorError, StateError
from detector.metrics import Metrics
from detector.records import Record
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.sources.base import Batch, SourceBase
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident

SETTINGS = Settings(state=StateSettings(flush_interval_seconds=60))
WAIT_SECONDS = 30.0


class FedSource(SourceBase):
    """Hands out the batches the test feeds it, one at a time, and records what is settled."""

    def __init__(self) -> None:
        self.name = "fed"
        self._feed: asyncio.Queue[tuple[list[dict[str, Any]], str] | None] = asyncio.Queue()
        self._fed = 0
        self.acked: list[int] = []
        self.nacked: list[int] = []

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._feed.put_nowait(None)

    def feed(self, records: list[dict[str, Any]], shard: str = "default") -> None:
        self._feed.put_nowait((records, shard))

    async def batches(self) -> AsyncIterator[Batch]:
        while (fed := await self._feed.get()) is not None:
            records, shard = fed
            index, self._fed = self._fed, self._fed + 1

            async def ack(index: int = index) -> None:
                self.acked.append(index)

            async def nack(exc: BaseException, index: int = index) -> None:
                self.nacked.append(index)

            items = [Record(f"fed:{index}:{i}", r) for i, r in enumerate(records)]
            yield Batch(source=self.name, shard=shard, items=items, ack=ack, nack=nack)


class CountingSink(JsonlSink):
    """Counts its writes; fails the `fail_on`-th (1-based) with `error`."""

    def __init__(self, path: Path, *, fail_on: int = 0, error: Exception | None = None) -> None:
        super().__init__("out", {"path": str(path)})
        self.writes = 0
        self.fail_on = fail_on
        self.error = error

    async def write(self, records: Any) -> None:
        self.writes += 1
        if self.writes == self.fail_on and self.error is not None:
            raise self.error
        await super().write(records)


class GatedStore(SqliteStateStore):
    """Holds each save until `gate` opens; fails the `fail_on`-th save (1-based)."""

    def __init__(self, path: Path, *, fail_on: int = 0) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.saves = 0
        self.fail_on = fail_on

    def save(self, shard: str, state: Any, **kwargs: Any) -> None:
        self.saves += 1
        self.entered.set()
        if not self.gate.wait(WAIT_SECONDS):
            raise AssertionError("the test never opened the store's gate")
        if self.saves == self.fail_on:
            raise StateError("disk full")
        super().save(shard, state, **kwargs)


def _service(
    source: FedSource, sink: JsonlSink, store: SqliteStateStore, metrics: Metrics | None = None
) -> Service:
    return Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=store,
        owner="test",
        metrics=metrics,
    )


def _count(metrics: Metrics, name: str) -> float:
    return sum(value for sample, _, value in metrics.samples() if sample == f"{name}_count")


async def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _halves() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = incident()
    return records[:20], records[20:]


def _restored(store: SqliteStateStore, shard: str = "default") -> Any:
    pipeline = build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml")
    snapshot = store.load(shard)
    if snapshot is not None:
        pipeline.restore(snapshot)
    return pipeline


def _all_duplicates(pipeline: Any, records: list[dict[str, Any]]) -> bool:
    return all(pipeline.process(parse_record(r)).duplicate for r in records)


def _unseen(pipeline: Any, records: list[dict[str, Any]]) -> bool:
    """None of `records` was seen before (the incident repeats one of its own events)."""
    seen: set[str] = set()
    for record in records:
        if pipeline.process(parse_record(record)).duplicate != (record["eventID"] in seen):
            return False
        seen.add(record["eventID"])
    return True


async def _restart_and_redeliver(
    tmp_path: Path, store: SqliteStateStore, *batches: list[dict[str, Any]]
) -> None:
    """A new service on `store` gets the batches again: all are acknowledged and saved."""
    source, out = FedSource(), CountingSink(tmp_path / "out.jsonl")
    restarted = _service(source, out, store)
    stop = asyncio.Event()
    running = asyncio.create_task(restarted.run(stop))
    for records in batches:
        source.feed(records)
    await _until(lambda: out.writes == len(batches), "the batches written again")
    stop.set()
    await asyncio.wait_for(running, WAIT_SECONDS)
    assert source.acked == list(range(len(batches)))
    assert _all_duplicates(_restored(store), [r for records in batches for r in records])


async def test_batches_go_on_while_a_cut_is_saved_and_are_acked_with_the_next_cut(
    tmp_path: Path,
) -> None:
    first, second = _halves()
    source, sink = FedSource(), CountingSink(tmp_path / "out.jsonl")
    store = GatedStore(tmp_path / "state.db")
    metrics = Metrics(sources=[source.name], sinks=[sink.name], runtime_collectors=False)
    service = _service(source, sink, store, metrics)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))

    source.feed(first)
    await _until(lambda: sink.writes == 1, "the first batch's write")
    service.request_flush()
    await asyncio.to_thread(store.entered.wait, WAIT_SECONDS)
    source.feed(second)
    # The save of the first cut is still held, yet the second batch reaches the sink.
    await _until(lambda: sink.writes == 2, "the second batch's write during the save")
    assert source.acked == []
    store.gate.set()
    await _until(lambda: source.acked == [0], "the first cut's acknowledgement")
    await asyncio.sleep(0.2)
    assert source.acked == [0], "a batch after the cut was acknowledged before it was saved"
    assert store.saves == 1
    # The cut is counted when it is made, the flush when its save is done.
    assert _count(metrics, "trailguard_state_cut_duration_seconds") == 1
    assert _count(metrics, "trailguard_state_flush_duration_seconds") == 1

    stop.set()
    await asyncio.wait_for(running, WAIT_SECONDS)
    assert source.acked == [0, 1]
    assert source.nacked == []
    assert store.saves == 2
    assert _count(metrics, "trailguard_state_flush_duration_seconds") == 2
    restored = _restored(store)
    assert _all_duplicates(restored, first + second)
    store.close()


async def test_a_cut_that_cannot_be_saved_drops_the_shard_and_a_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    first, second = _halves()
    source, sink = FedSource(), CountingSink(tmp_path / "out.jsonl")
    store = GatedStore(tmp_path / "state.db", fail_on=1)
    service = _service(source, sink, store)
    running = asyncio.create_task(service.run(asyncio.Event()))

    source.feed(first)
    await _until(lambda: sink.writes == 1, "the first batch's write")
    service.request_flush()
    await asyncio.to_thread(store.entered.wait, WAIT_SECONDS)
    source.feed(second)
    await _until(lambda: sink.writes == 2, "the second batch's write during the save")
    store.gate.set()
    with pytest.raises(StateError, match="disk full"):
        await asyncio.wait_for(running, WAIT_SECONDS)
    # The cut's batch and the one after it: the shard's pipeline had handed the cut over,
    # so nothing it saved later could have held the first batch.
    assert sorted(source.nacked) == [0, 1]
    assert source.acked == []
    assert service.pipelines() == []
    assert store.load("default") is None

    healthy = SqliteStateStore(tmp_path / "state.db")
    await _restart_and_redeliver(tmp_path, healthy, first, second)
    healthy.close()
    store.close()


async def test_a_batch_failing_during_a_save_is_rolled_back_onto_the_saved_cut(
    tmp_path: Path,
) -> None:
    first, second = _halves()
    source = FedSource()
    sink = CountingSink(
        tmp_path / "out.jsonl", fail_on=2, error=DetectorError("sink rejected the batch")
    )
    store = GatedStore(tmp_path / "state.db")
    service = _service(source, sink, store)
    running = asyncio.create_task(service.run(asyncio.Event()))

    source.feed(first)
    await _until(lambda: sink.writes == 1, "the first batch's write")
    service.request_flush()
    await asyncio.to_thread(store.entered.wait, WAIT_SECONDS)
    source.feed(second)
    await _until(lambda: sink.writes == 2, "the second batch's failed write")
    await asyncio.sleep(0.2)  # the rollback is waiting for the save in progress
    store.gate.set()
    with pytest.raises(DetectorError, match="sink rejected"):
        await asyncio.wait_for(running, WAIT_SECONDS)
    assert source.acked == [0]
    assert source.nacked == [1]
    # Rolled back onto the cut the save stored, not onto the state from before it.
    (pipeline,) = service.pipelines()
    assert _all_duplicates(pipeline, first)
    assert _unseen(pipeline, second)
    assert _all_duplicates(_restored(store), first)
    assert _unseen(_restored(store), second)
    store.close()


class FlushFails(CountingSink):
    """Its first flush fails with an error retrying cannot fix."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.flushes = 0

    async def flush(self) -> None:
        self.flushes += 1
        if self.flushes == 1:
            raise DetectorError("sink refused the flush")
        await super().flush()


async def test_a_sink_that_cannot_flush_leaves_the_cut_unsaved_and_its_batches_nacked(
    tmp_path: Path,
) -> None:
    first, second = _halves()
    source, sink = FedSource(), FlushFails(tmp_path / "out.jsonl")
    store = SqliteStateStore(tmp_path / "state.db")
    service = _service(source, sink, store)
    running = asyncio.create_task(service.run(asyncio.Event()))

    source.feed(first)
    await _until(lambda: sink.writes == 1, "the first batch's write")
    service.request_flush()
    with pytest.raises(DetectorError, match="refused the flush"):
        await asyncio.wait_for(running, WAIT_SECONDS)
    assert source.nacked == [0]
    assert source.acked == []
    assert service.pipelines() == []
    assert store.load("default") is None

    await _restart_and_redeliver(tmp_path, store, first, second)
    store.close()


async def test_a_cut_that_fails_on_one_shard_saves_the_shards_cut_before_it_whole(
    tmp_path: Path,
) -> None:
    first, second = _halves()
    made: list[Any] = []

    def pipelines() -> Any:
        pipeline = build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml")
        made.append(pipeline)
        if len(made) == 3:  # "default", "a", then "b": b's first delta cannot be built
            changes, calls = pipeline.changes, []

            def failing() -> Any:
                calls.append(1)
                if len(calls) == 1:
                    raise StateError("state row is not JSON-serialisable")
                return changes()

            pipeline.changes = failing
        return pipeline

    source, sink = FedSource(), CountingSink(tmp_path / "out.jsonl")
    store = SqliteStateStore(tmp_path / "state.db")
    service = Service(
        SETTINGS,
        pipeline_factory=pipelines,
        sources=[source],
        sinks=[sink],
        store=store,
        owner="test",
    )
    running = asyncio.create_task(service.run(asyncio.Event()))
    source.feed(first, shard="a")
    source.feed(second, shard="b")
    await _until(lambda: sink.writes == 2, "both batches written")
    service.request_flush()
    with pytest.raises(StateError, match="not JSON-serialisable"):
        await asyncio.wait_for(running, WAIT_SECONDS)
    # The stopping flush saved both: "a" whole again, though its first delta was discarded.
    assert sorted(source.acked) == [0, 1]
    assert _all_duplicates(_restored(store, "a"), first)
    assert _all_duplicates(_restored(store, "b"), second)
    store.close()
