"""The service keeps the collector's full passes off its long-lived state (detector/heap.py).

Freezing is only safe because what the pipeline keeps per event and per session holds no
reference cycles: frozen objects still die by reference counting, so evicted sessions are
freed. These tests hold the pipeline to that, and the service to freezing what outlives
its batches and handing it back to the collector when it discards a pipeline.
"""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import detector.service
from detector.config import ServiceSettings, Settings, StateSettings
from detector.core.parse import parse_record
from detector.heap import FreezingHeap, PlainHeap, heap_for
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident, scenario
from tests.service.test_failed_batches import FailingSink, SinkDown
from tests.service.test_service_loop import ScriptedSource

EVENTS = 5_000


def _tracked_ids() -> set[int]:
    """Objects the collector walks on a full pass (the frozen ones are not among them)."""
    return {id(o) for o in gc.get_objects()}


def test_a_pipeline_s_state_dies_by_reference_counting_alone() -> None:
    events = [parse_record(r) for r in scenario(EVENTS)[:EVENTS]]
    settings = Settings()
    # A first pipeline fills the caches shared by all (the catalogue's, the actions').
    warm = build_pipeline(settings, scopes_path=DEMO / "scopes.yaml")
    for event in events:
        warm.process(event)
    del warm
    gc.collect()
    gc.freeze()
    before = gc.get_freeze_count()
    pipeline = build_pipeline(settings, scopes_path=DEMO / "scopes.yaml")
    for event in events:
        pipeline.process(event)
    gc.collect(1)
    gc.freeze()
    held = gc.get_freeze_count() - before
    sessions = pipeline.tracker.kind_counts().total()
    assert held > 5 * sessions  # the state itself was frozen

    pipeline.evict_idle(max(e.event_time for e in events) + timedelta(days=365))
    assert pipeline.tracker.kind_counts().total() == 0
    evicted = gc.get_freeze_count() - before
    assert evicted < held // 5, f"{evicted} of {held} frozen objects outlived their eviction"
    # The collector, shown everything again, finds no cycle among what was evicted.
    gc.unfreeze()
    assert gc.collect() == 0
    # A discarded pipeline is a cycle (its catalogue and agent-marker caches refer back to
    # it), bounded by the caches, not by the events: why the service releases on discard.
    del pipeline
    assert 0 < gc.collect() < held // 10


def _service(tmp_path: Path, source: ScriptedSource, *, freeze: bool, sink: Any = None) -> Service:
    settings = Settings(
        state=StateSettings(flush_interval_seconds=60),
        service=ServiceSettings(gc_freeze=freeze),
    )
    return Service(
        settings,
        pipeline_factory=lambda: build_pipeline(settings, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink or JsonlSink("out", {"path": str(tmp_path / "out.jsonl")})],
        store=SqliteStateStore(tmp_path / "state.db"),
        owner="test",
    )


def _live_session(service: Service) -> object:
    """The view of one session the service holds after its run."""
    (pipeline,) = service.pipelines()
    view, _ = pipeline.tracker.live()[0]
    return view


@pytest.mark.parametrize("freeze", [True, False])
async def test_what_outlives_a_batch_is_out_of_the_collector_s_view_when_freezing(
    tmp_path: Path, freeze: bool
) -> None:
    records = incident()
    service = _service(tmp_path, ScriptedSource([records[:20], records[20:]]), freeze=freeze)
    await asyncio.wait_for(service.run(asyncio.Event()), timeout=30)
    session = _live_session(service)
    assert gc.is_tracked(session)
    assert (id(session) in _tracked_ids()) is not freeze
    service.store.close()


class RecordingHeap(FreezingHeap):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def settle(self) -> None:
        self.calls.append("settle")
        super().settle()

    def release(self) -> None:
        self.calls.append("release")
        super().release()


async def test_a_rolled_back_shard_hands_the_frozen_state_back_to_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heap = RecordingHeap()
    monkeypatch.setattr(detector.service, "heap_for", lambda freeze: heap)
    records = incident()
    sink = FailingSink(tmp_path / "out.jsonl", fail_on=2, error=SinkDown("401"))
    source = ScriptedSource([records[:20], records[20:]], nacks=True)
    service = _service(tmp_path, source, freeze=True, sink=sink)
    with pytest.raises(SinkDown):
        await asyncio.wait_for(service.run(asyncio.Event()), timeout=30)
    # The first batch settled; the second failed, its shard was rebuilt and it was nacked.
    assert heap.calls[:2] == ["settle", "release"]
    assert source.nacked == [1]
    service.store.close()


def test_the_setting_picks_the_heap() -> None:
    assert isinstance(heap_for(True), FreezingHeap)
    assert isinstance(heap_for(False), PlainHeap)
    assert Settings().service.gc_freeze is True


def test_freezing_heap_settles_releases_and_pauses() -> None:
    heap = FreezingHeap()
    kept = [[index] for index in range(1_000)]
    heap.settle()
    assert gc.get_freeze_count() >= len(kept)
    heap.release()
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), heap.paused():
        assert not gc.isenabled()
        raise RuntimeError("a save that failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()  # a collector someone else turned off stays off
    finally:
        gc.enable()


def test_what_a_pause_builds_is_frozen_and_what_was_garbage_before_it_is_collected() -> None:
    heap = FreezingHeap()
    heap.release()
    gc.collect()
    # Garbage a collection must free: a cycle nothing refers to any more.
    cycle: list[Any] = []
    cycle.append(cycle)
    gone = id(cycle)
    del cycle
    with heap.paused():
        delta = [[index] for index in range(1_000)]  # as a shard's delta is built
    try:
        assert gone not in _tracked_ids()
        assert gc.get_freeze_count() >= len(delta)
        walked = _tracked_ids()
        assert not any(id(row) in walked for row in delta)
    finally:
        heap.release()


def test_plain_heap_leaves_the_collector_alone() -> None:
    heap = PlainHeap()
    heap.settle()
    assert gc.get_freeze_count() == 0
    with heap.paused():
        assert gc.isenabled()
