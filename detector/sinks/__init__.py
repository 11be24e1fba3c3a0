"""Where contract records go: a registry of sinks keyed by the `type` users write in config.

A sink is opened once, receives the records of each batch in order, is flushed before state
is saved and sources are acknowledged, and must be idempotent: at-least-once delivery means a
batch can be processed twice after a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from detector.registry import Registry


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


SinkFactory = Callable[[str, Mapping[str, Any]], Sink]

SINKS: Registry[SinkFactory] = Registry("sink")
