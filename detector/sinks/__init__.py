"""Where contract records go: a registry of sinks keyed by the `type` users write in config.

A sink is opened once, receives the records of each batch in order, is flushed before state
is saved and sources are acknowledged, and must be idempotent: at-least-once delivery means a
batch can be processed twice after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from detector.config import Where
from detector.registry import Registry


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class SinkFactory(Protocol):
    """(configured name, its settings mapping, where they sit in the file) → a Sink.

    Raises ConfigError on bad settings, naming the key as the user writes it (`where`).
    """

    def __call__(
        self, name: str, settings: Mapping[str, Any], *, where: Where | None = None
    ) -> Sink: ...


SINKS: Registry[SinkFactory] = Registry("sink")
