"""What every streaming source hands the runtime: batches of records and a way to settle them.

A source reads records (decoded CloudTrail records, or BadInput for what could not be decoded)
and groups them into batches. The runtime processes a batch, hands its findings, alerts and
responses to the sinks, flushes state, and only then calls `ack`: Kafka commits offsets, SQS
deletes messages, the LookupEvents poller advances its checkpoint. A batch that fails is
`nack`ed: the source redelivers it or, after its retry limit, dead-letters it.

`shard` names the state a batch belongs to. A Kafka partition of the keyed topic is one shard,
so the instance that owns the partition owns its sessions; other sources use DEFAULT_SHARD.
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Protocol

from detector.config import Where
from detector.dead_letter import DeadLetter
from detector.records import BadInput, Record
from detector.registry import Registry

DEFAULT_SHARD = "default"


@dataclass(slots=True, kw_only=True)
class Batch:
    source: str  # the configured source name, for metrics and logs
    shard: str = DEFAULT_SHARD
    # A list as sources build it; the service packs it (`PackedItems`) once processed,
    # unless it came encoded (`PackedItems`, `EncodedMessages`). Only ever iterated, and
    # possibly more than once (a batch re-applied after a rollback).
    items: Iterable[Record | BadInput] = field(default_factory=list)
    ack: Callable[[], Awaitable[None]]
    nack: Callable[[BaseException], Awaitable[None]]
    # Where the batch's rejected records go when its source keeps its own dead letter (the
    # `files` source's `dead_letter`); None: the service's. The source makes what was written
    # durable before its ack settles the batch.
    dead_letter: DeadLetter | None = None
    # time.monotonic() when the source made the batch: decision latency counts from here,
    # so time spent queued behind a busy service is part of it.
    arrived: float = field(default_factory=time.monotonic)


class CheckpointStore(Protocol):
    """Where a source keeps its position between runs (the state store implements this)."""

    def checkpoint(self, name: str) -> str | None: ...

    def save_checkpoint(self, name: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ShardHooks:
    """What the service offers a partitioned source: flush now, and forget revoked shards."""

    request_flush: Callable[[], None]
    forget: Callable[[Sequence[str]], Coroutine[Any, Any, None]]


class Source(Protocol):
    """Everything the service uses of a running source; `SourceBase` gives the defaults.

    Order of calls: `attach` and `attach_shards` (before `start`), `start`, `batches` (ends
    once `stop` was called and the source drained), and after the service's final flush,
    `wait_closed`. Every batch handed out is acked or nacked exactly once, unless the
    process dies first: then the source delivers it again to the next run.
    """

    name: str

    def attach(self, store: CheckpointStore) -> None:
        """Where the source saves its position; called before `start`, which reads it."""
        ...

    def attach_shards(self, hooks: ShardHooks) -> None:
        """Hooks for a source whose batches belong to shards that can move (Kafka)."""
        ...

    async def start(self) -> None: ...

    def batches(self) -> AsyncIterator[Batch]: ...

    async def stop(self) -> None: ...

    async def wait_closed(self) -> None:
        """After the final flush: nothing more will be settled; release the connections."""
        ...

    @property
    def ready(self) -> bool:
        """Connected and able to deliver (for /readyz)."""
        ...

    @property
    def lag(self) -> Mapping[str, int]:
        """Records not yet read, by shard, as far as the source can tell; {} when it cannot."""
        ...

    def counters(self) -> Mapping[str, int]:
        """The source's own operation counts (deletes, commits, skipped digests, ...).

        Exported as trailguard_source_operations_total{operation=...}; names are a small
        fixed set per source type, never built from data.
        """
        ...


class SourceBase:
    """Defaults for the parts of the Source protocol a source has no use for.

    Subclasses set `name` and implement `start`, `batches`, `stop` and `ready`.
    """

    name: str

    def attach(self, store: CheckpointStore) -> None:
        """Sources without a position of their own ignore the store."""

    def attach_shards(self, hooks: ShardHooks) -> None:
        """Sources that use DEFAULT_SHARD only have no shards to hand over."""

    async def wait_closed(self) -> None:
        """Nothing to release beyond what `stop` did."""

    @property
    def lag(self) -> Mapping[str, int]:
        return {}

    def counters(self) -> Mapping[str, int]:
        return {}


class SourceFactory(Protocol):
    """(configured name, its settings mapping, where they sit in the file) → a Source.

    Raises ConfigError on bad settings, naming the key as the user writes it (`where`).
    """

    def __call__(
        self, name: str, settings: Mapping[str, Any], *, where: Where | None = None
    ) -> Source: ...


SOURCES: Registry[SourceFactory] = Registry("source")
