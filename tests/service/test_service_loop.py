"""The run loop's order of work, with a scripted source and the real sink and state store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from detector.config import ServiceSettings, Settings, StateSettings
from detector.records import Record
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.sources.base import Batch, SourceBase
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident


class ScriptedSource(SourceBase):
    """Hands out prepared batches, records acks, and can fail after them."""

    def __init__(
        self, batches: list[list[dict[str, Any]]], *, fail: bool = False, nacks: bool = False
    ) -> None:
        self.name = "scripted"
        self._batches = batches
        self._fail = fail
        self._nacks = nacks  # expected (recorded) rather than a test failure
        self.acked: list[int] = []
        self.nacked: list[int] = []
        self.events: list[str] = []  # what happened, in order, across source and sink

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def batches(self) -> AsyncIterator[Batch]:
        for index, records in enumerate(self._batches):

            async def ack(index: int = index) -> None:
                self.acked.append(index)
                self.events.append(f"ack {index}")

            async def nack(exc: BaseException, index: int = index) -> None:
                if not self._nacks:
                    raise AssertionError(f"unexpected nack: {exc}")
                self.nacked.append(index)

            items = [Record(f"scripted:{index}:{i}", r) for i, r in enumerate(records)]
            yield Batch(source=self.name, items=list(items), ack=ack, nack=nack)
        if self._fail:
            raise ConnectionError("broker went away")


class RecordingSink(JsonlSink):
    def __init__(self, path: Path, events: list[str]) -> None:
        super().__init__("out", {"path": str(path)})
        self.events = events

    async def flush(self) -> None:
        await super().flush()
        self.events.append("sink flush")


class RecordingStore(SqliteStateStore):
    def __init__(self, path: Path, events: list[str]) -> None:
        super().__init__(path)
        self.events = events

    def save(self, shard: str, snapshot: Any, **kwargs: Any) -> None:
        super().save(shard, snapshot, **kwargs)
        self.events.append("state saved")


def _service(tmp_path: Path, source: ScriptedSource) -> tuple[Service, RecordingStore]:
    settings = Settings(state=StateSettings(flush_interval_seconds=60))
    store = RecordingStore(tmp_path / "state.db", source.events)
    service = Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[RecordingSink(tmp_path / "out.jsonl", source.events)],
        store=store,
        owner="test",
    )
    return service, store


async def test_results_are_written_and_state_saved_before_anything_is_acknowledged(
    tmp_path: Path,
) -> None:
    records = incident()
    source = ScriptedSource([records[:20], records[20:]])
    service, store = _service(tmp_path, source)
    # The scripted source ends after its batches, which ends the run as a stop would.
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=30)
    assert source.acked == [0, 1]
    first_ack = source.events.index("ack 0")
    assert source.events.index("sink flush") < first_ack
    assert source.events.index("state saved") < first_ack
    written = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert any(r["type"] == "response" for r in written)
    assert store.load("default") is not None
    store.close()


async def test_a_failing_source_stops_the_service_after_settling_what_it_delivered(
    tmp_path: Path,
) -> None:
    source = ScriptedSource([incident()[:10]], fail=True)
    service, store = _service(tmp_path, source)
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=30)
    assert service.failed is not None and "broker went away" in service.failed
    assert source.acked == [0]
    store.close()


class BlockingSink(RecordingSink):
    """A sink that cannot write until released, like a paging API that is down."""

    def __init__(self, path: Path, events: list[str]) -> None:
        super().__init__(path, events)
        self.release = asyncio.Event()

    async def write(self, records: Any) -> None:
        await self.release.wait()
        await super().write(records)


async def test_a_slow_sink_holds_the_source_back(tmp_path: Path) -> None:
    records = incident()
    source = ScriptedSource([[r] for r in records])
    produced: list[int] = []
    original = source.batches

    async def counting() -> AsyncIterator[Batch]:
        async for batch in original():
            produced.append(len(produced))
            yield batch

    source.batches = counting  # type: ignore[method-assign]
    settings = Settings(
        state=StateSettings(flush_interval_seconds=60), service=ServiceSettings(queue_batches=1)
    )
    store = RecordingStore(tmp_path / "state.db", source.events)
    sink = BlockingSink(tmp_path / "out.jsonl", source.events)
    service = Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=store,
        owner="test",
    )
    task = asyncio.create_task(service.run(asyncio.Event()))
    for _ in range(50):
        await asyncio.sleep(0.01)
    # One batch in the sink, one in the queue, one waiting to be queued: no more.
    assert len(produced) <= 3
    sink.release.set()
    await asyncio.wait_for(task, timeout=30)
    assert len(produced) == len(records)
    assert source.acked == list(range(len(records)))
    store.close()
