"""Where contract records go: a registry of sinks keyed by the `type` users write in config.

A sink is opened once, receives the records of each batch in order, is flushed before state
is saved and sources are acknowledged, and must be idempotent: at-least-once delivery means a
batch can be processed twice after a crash.

The service flushes while later batches go on, so `write` may be called while `flush` runs:
a flush must make durable what was written before it began, and keep what is written during
it for the next flush (detector.testing.conformance.check_sink holds every sink to both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from detector.registry import Registry
from detector.state.store import StateStore


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class DeliveryMetrics(Protocol):
    """What a sink that talks to a paging system reports (detector.metrics.AlertSinkMetrics)."""

    def sent(self, sink: str) -> None: ...

    def failed(self, sink: str, *, retriable: bool) -> None: ...

    def active(self, sink: str, count: int) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkContext:
    """What the service hands every sink besides its own settings.

    `key` is where the sink sits in the config (`sinks[1]`) so errors name it; `public_url`
    is `http.public_url`, the base of the session page links alerts carry; `store` is the
    service's state store, where paging sinks remember what they delivered so a restart does
    not page twice (None: remembered in memory only).
    """

    source: str = "<defaults>"
    key: str = "sinks[0]"
    public_url: str | None = None
    store: StateStore | None = None
    metrics: DeliveryMetrics | None = None
    clock: Callable[[], datetime] = field(default=_utc_now)


DEFAULT_CONTEXT = SinkContext()


class SinkFactory(Protocol):
    def __call__(
        self, name: str, settings: Mapping[str, Any], context: SinkContext = ..., /
    ) -> Sink: ...


SINKS: Registry[SinkFactory] = Registry("sink")
