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

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
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
    items: list[Record | BadInput] = field(default_factory=list)
    ack: Callable[[], Awaitable[None]]
    nack: Callable[[BaseException], Awaitable[None]]
    # Where the batch's rejected records go when its source keeps its own dead letter (the
    # `files` source's `dead_letter`); None: the service's. The source makes what was written
    # durable before its ack settles the batch.
    dead_letter: DeadLetter | None = None


class Source(Protocol):
    """A running source. `batches` ends when `stop` has been called and the source drained."""

    name: str

    async def start(self) -> None: ...

    def batches(self) -> AsyncIterator[Batch]: ...

    async def stop(self) -> None: ...

    @property
    def ready(self) -> bool:
        """Connected and able to deliver (for /readyz)."""
        ...


@dataclass(frozen=True, slots=True)
class ShardHooks:
    """What the service offers a partitioned source: flush now, and forget revoked shards."""

    request_flush: Callable[[], None]
    forget: Callable[[Sequence[str]], Coroutine[Any, Any, None]]


class SourceFactory(Protocol):
    """(configured name, its settings mapping, where they sit in the file) → a Source.

    Raises ConfigError on bad settings, naming the key as the user writes it (`where`).
    """

    def __call__(
        self, name: str, settings: Mapping[str, Any], *, where: Where | None = None
    ) -> Source: ...


SOURCES: Registry[SourceFactory] = Registry("source")
