"""trailguard_decision_latency_seconds: one sample per batch handed to every sink, measured
from the batch's arrival from its source, none for a batch that failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from detector.config import Settings, StateSettings
from detector.errors import DetectorError
from detector.metrics import Metrics
from detector.records import Record
from detector.service import Service
from detector.sinks.jsonl import JsonlSink
from detector.sources.base import Batch, SourceBase
from detector.state.sqlite import SqliteStateStore
from detector.wiring import build_pipeline
from tests.scenario import DEMO, incident

SETTINGS = Settings(state=StateSettings(flush_interval_seconds=60))
NAME = "trailguard_decision_latency_seconds"
# How long before it is taken the first batch "arrived": as if it had waited in the queue.
QUEUED_SECONDS = 2.0


class AgedSource(SourceBase):
    """Hands out batches of the incident; the first arrived QUEUED_SECONDS before it was made."""

    def __init__(self, parts: list[list[dict[str, Any]]]) -> None:
        self.name = "aged"
        self._parts = parts
        self.nacked = 0

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def batches(self) -> AsyncIterator[Batch]:
        for index, part in enumerate(self._parts):

            async def ack() -> None:
                return None

            async def nack(exc: BaseException) -> None:
                self.nacked += 1

            items = [Record(f"aged:{index}:{i}", r) for i, r in enumerate(part)]
            arrived = time.monotonic() - (QUEUED_SECONDS if index == 0 else 0.0)
            yield Batch(source=self.name, items=list(items), ack=ack, nack=nack, arrived=arrived)


class SinkDown(DetectorError):
    """A sink error retrying cannot fix."""


class BrokenSink(JsonlSink):
    async def write(self, records: Any) -> None:
        raise SinkDown("rejected credential")


def _service(tmp_path: Path, source: AgedSource, sink: JsonlSink, metrics: Metrics) -> Service:
    return Service(
        SETTINGS,
        pipeline_factory=lambda: build_pipeline(SETTINGS, scopes_path=DEMO / "scopes.yaml"),
        sources=[source],
        sinks=[sink],
        store=SqliteStateStore(tmp_path / "state.db"),
        owner="test",
        metrics=metrics,
    )


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    for sample, got, value in metrics.samples():
        if sample == name and got == labels:
            return value
    raise AssertionError(f"no sample {name} {labels}")


async def test_every_handed_batch_is_observed_from_its_arrival(tmp_path: Path) -> None:
    records = incident()
    source = AgedSource([records[:20], records[20:]])
    metrics = Metrics(sources=["aged"], sinks=["out"], runtime_collectors=False)
    sink = JsonlSink("out", {"path": str(tmp_path / "out.jsonl")})
    await asyncio.wait_for(_service(tmp_path, source, sink, metrics).run(asyncio.Event()), 30)
    assert _sample(metrics, f"{NAME}_count") == 2
    # The first batch's time in the queue is part of its latency.
    assert _sample(metrics, f"{NAME}_sum") >= QUEUED_SECONDS
    assert _sample(metrics, f"{NAME}_bucket", le="1.0") <= 1
    assert _sample(metrics, f"{NAME}_bucket", le="+Inf") == 2


async def test_a_batch_that_failed_is_not_observed(tmp_path: Path) -> None:
    source = AgedSource([incident()[:20]])
    metrics = Metrics(sources=["aged"], sinks=["out"], runtime_collectors=False)
    sink = BrokenSink("out", {"path": str(tmp_path / "out.jsonl")})
    with pytest.raises(SinkDown):
        await asyncio.wait_for(_service(tmp_path, source, sink, metrics).run(asyncio.Event()), 30)
    assert source.nacked == 1
    assert _sample(metrics, f"{NAME}_count") == 0


def test_the_histogram_has_no_labels() -> None:
    metrics = Metrics(runtime_collectors=False)
    metrics.observe_decision(0.012)
    labelled = {
        tuple(sorted(labels))
        for name, labels, _ in metrics.samples()
        if name.startswith(NAME) and name.endswith("_bucket")
    }
    assert labelled == {("le",)}
