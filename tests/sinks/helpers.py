"""Building paging sinks for tests, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.adapters import load_adapters
from detector.sinks import SINKS, DeliveryMetrics, SinkContext
from detector.sinks.paging import IncidentSink
from detector.state.store import StateStore

PUBLIC_URL = "https://trailguard.example.com"


@dataclass(slots=True)
class Clock:
    now: datetime = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_sink(
    kind: str,
    settings: Mapping[str, Any],
    *,
    store: StateStore | None = None,
    clock: Clock | None = None,
    metrics: DeliveryMetrics | None = None,
) -> IncidentSink:
    load_adapters()
    context = SinkContext(
        source="test.yaml",
        key="sinks[0]",
        public_url=PUBLIC_URL,
        store=store,
        metrics=metrics,
        clock=clock or Clock(),
    )
    sink = SINKS.get(kind)(kind, {"retry_first_seconds": 0.01, **settings}, context)
    assert isinstance(sink, IncidentSink)
    return sink


def by_step(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split contract records into the batches one event at a time would give."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for record in records:
        if record["type"] == "finding" and current and current[-1]["type"] != "finding":
            batches.append(current)
            current = []
        current.append(record)
    if current:
        batches.append(current)
    return batches
